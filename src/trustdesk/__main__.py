from trustdesk.cli import main

main()
