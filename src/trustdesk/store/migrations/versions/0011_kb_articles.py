"""help center articles (claimed by issue 22 helper)

Revision ID: 0011
Revises: 0010
"""
