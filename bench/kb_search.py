"""The help center's search at 2,000 articles on SQLite: p50/p95/p99 of one search.

    python -m bench.kb_search                 # 2,000 articles, 1,000 searches
    python -m bench.kb_search --articles 500 --searches 200

In one process, no HTTP: a fresh SQLite database (migrated), articles made with
actions/kb.create_article (Markdown rendered, cleaned, stemmed and indexed as in
production) from a shop's vocabulary, then actions/kb.search timed with perf_counter for
queries a customer types (two to four words, inflected: "оплата заказов", "доставку в
казань"). The time is the action's own: stems, the one SQL statement through the raw
reader, snippets. The HTTP layer adds the same ~1 ms as any visitor call (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from trustdesk.actions import kb
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.presence import make_presence
from trustdesk.store.db import Store, run_migrations

_NOUNS = (
    "заказ оплата доставка возврат товар карта курьер посылка гарантия ремонт скидка купон "
    "подарок размер цвет наушники часы рюкзак лампа зарядка кружка кабель чехол батарея "
    "магазин склад пункт самовывоз почта трек номер чек счёт аккаунт пароль адрес телефон "
    "обмен брак упаковка сертификат бонус рассрочка кэшбэк срок город регион"
)
_VERBS = (
    "оплатить доставить вернуть получить отследить заказать отменить изменить обменить "
    "проверить выбрать оформить активировать подключить зарядить починить"
)
FORMS = ("", "а", "у", "ом", "ы", "ов", "е", "ами")
_CITIES = "Москва Казань Самара Пермь Тула Омск Сочи Уфа"
NOUNS, VERBS, CITIES = _NOUNS.split(), _VERBS.split(), _CITIES.split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(VERBS)] + [rng.choice(NOUNS) + rng.choice(FORMS) for _ in range(6)]
    if rng.random() < 0.3:
        words.append(rng.choice(CITIES))
    return " ".join(words).capitalize() + "."


def article(rng: random.Random, i: int) -> tuple[str, str, str]:
    title = f"Как {rng.choice(VERBS)} {rng.choice(NOUNS)} {rng.choice(NOUNS)} ({i})"
    paragraphs = [" ".join(sentence(rng) for _ in range(rng.randint(3, 6))) for _ in range(4)]
    body = "\n\n".join(paragraphs) + "\n\n- " + sentence(rng) + "\n- " + sentence(rng)
    return title, body, rng.choice(NOUNS).capitalize()


def query(rng: random.Random) -> str:
    words = [rng.choice(NOUNS) + rng.choice(FORMS) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        words.insert(0, rng.choice(VERBS))
    return " ".join(words)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(articles: int, searches: int, data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir)
    hub = make_hub(None)
    store = Store(settings, publish=hub.publish_many)
    rt = Runtime(settings=settings, store=store, hub=hub, presence=make_presence(None))
    rng = random.Random(22)
    author: Any = SimpleNamespace(id=None, display_name="bench")
    t0 = time.perf_counter()
    for i in range(articles):
        title, body, category = article(rng, i)
        await kb.create_article(
            rt, author, title=title, body=body, published=True, locale="ru", category=category
        )
    write_s = time.perf_counter() - t0
    queries = [query(rng) for _ in range(searches)]
    for q in queries[:50]:  # warm: statement caches, the reader's connection
        await kb.search(rt, q, "ru")
    times: list[float] = []
    hits: list[int] = []
    for q in queries:
        start = time.perf_counter()
        found = await kb.search(rt, q, "ru")
        times.append((time.perf_counter() - start) * 1000)
        hits.append(len(found))
    await store.dispose()
    return {
        "articles": articles,
        "searches": searches,
        "write_ms_per_article": write_s * 1000 / max(1, articles),
        "p50_ms": statistics.median(times),
        "p95_ms": pct(times, 95),
        "p99_ms": pct(times, 99),
        "max_ms": max(times),
        "mean_results": statistics.mean(hits),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=2000)
    p.add_argument("--searches", type=int, default=1000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        run_migrations(Settings(data_dir=Path(tmp)))  # (Alembic runs its own event loop)
        r = asyncio.run(measure(args.articles, args.searches, Path(tmp)))
    print(
        f"{r['articles']} articles, {r['searches']} searches on SQLite: "
        f"p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"max {r['max_ms']:.2f} ms; {r['mean_results']:.1f} results per search; "
        f"saving an article {r['write_ms_per_article']:.1f} ms"
    )


if __name__ == "__main__":
    main()
