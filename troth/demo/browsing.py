"""Browsing and research: page and screen calls, product views, searches, articles."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import APP, WEB, Piece
from troth.demo.jsontext import integer, json_object, number, pick, quoted
from troth.demo.period import NEVER
from troth.demo.population import by_typology
from troth.demo.vocabulary import (
    ARTICLES,
    ETHICS_TOPICS,
    PAGES,
    PRODUCT_CATEGORIES,
    SCREENS,
    SEARCH_QUERIES,
)

__all__ = ["PRODUCTS", "browse", "describe_products"]

PRODUCTS = 400
# Visits per month once identified and until dropout.
_PAGES = by_typology(
    deal_seeker=3,
    loyal_fan=5,
    quietly_retained=2,
    unhappy_complainer=3,
    vocal_advocate=6,
    browser=8,
    lapsed=4,
)
_PRODUCT_VIEWS = by_typology(
    deal_seeker=3,
    loyal_fan=3,
    quietly_retained=1.5,
    unhappy_complainer=1.5,
    vocal_advocate=4,
    browser=6,
    lapsed=3,
)
_SEARCHES = by_typology(
    deal_seeker=1.2,
    loyal_fan=1,
    quietly_retained=0.6,
    unhappy_complainer=0.6,
    vocal_advocate=1.2,
    browser=2,
    lapsed=1,
)
_ARTICLES = by_typology(
    deal_seeker=0.3,
    loyal_fan=1,
    quietly_retained=0.4,
    unhappy_complainer=0.3,
    vocal_advocate=2,
    browser=1.5,
    lapsed=0.5,
)
_SCREENS = by_typology(
    deal_seeker=2,
    loyal_fan=3,
    quietly_retained=2,
    unhappy_complainer=1.5,
    vocal_advocate=4,
    browser=2,
    lapsed=2,
)
_ETHICS = by_typology(
    deal_seeker=0.05,
    loyal_fan=0.3,
    quietly_retained=0.05,
    unhappy_complainer=0.05,
    vocal_advocate=0.5,
    browser=0.15,
    lapsed=0.1,
)
# Before identifying, visitors look around intensely for a short while.
_ANONYMOUS = {"pages": 30.0, "products": 20.0, "searches": 6.0, "articles": 3.0}
_RETURN_VISITS = 0.3  # page views per month after dropping out: a faint connection remains


def describe_products(product: np.ndarray) -> pa.Array:
    """Return Product Viewed properties (JSON) for product numbers: id, category, price (EUR)."""
    product = np.asarray(product, dtype=np.int64)
    product_id = pc.binary_join_element_wise(
        "p", pc.utf8_lpad(integer(product), width=4, padding="0"), ""
    )
    price = 9.9 + (product * 37 % 190)
    return json_object(
        {
            "product_id": quoted(product_id),
            "category": quoted(pick(PRODUCT_CATEGORIES, product % len(PRODUCT_CATEGORIES))),
            "price": number(price),
        }
    )


def _device(cohort: Cohort, name: str, at: Occurrences, app_share: float) -> np.ndarray:
    """Return WEB or APP per occurrence: app users use the app for `app_share` of them."""
    on_app = cohort.population.has_app[at.customer] & (cohort.uniform(name, at) < app_share)
    return np.where(on_app, APP, WEB)


def _pages(cohort: Cohort, code: str, at: Occurrences) -> Piece:
    """Return page calls at the given moments."""
    page = cohort.integers(code + ".page", at, len(PAGES))
    names = pick([name for name, _ in PAGES], page)
    properties = json_object(
        {"path": quoted(pick([path for _, path in PAGES], page)), "title": quoted(names)}
    )
    context = cohort.names.context.take(at.customer)
    return Piece(code, "page", at, name=names, device=WEB, properties=properties, context=context)


def _research(cohort: Cohort, code: str, at: Occurrences, what: str) -> Piece:
    """Return Product Viewed, Products Searched or Article Read tracks at the given moments."""
    device = _device(cohort, code + ".device", at, 0.3)
    channel = pc.if_else(pa.array(device == APP), "app", "web")
    if what == "Product Viewed":
        properties = describe_products(cohort.integers(code + ".product", at, PRODUCTS))
    elif what == "Products Searched":
        query = pick(SEARCH_QUERIES, cohort.integers(code + ".query", at, len(SEARCH_QUERIES)))
        properties = json_object({"query": quoted(query)})
    else:
        article = cohort.integers(code + ".article", at, len(ARTICLES))
        properties = json_object(
            {
                "article_id": quoted(pc.binary_join_element_wise("a", integer(article), "")),
                "title": quoted(pick(ARTICLES, article)),
            }
        )
    return Piece(
        code, "track", at, event=what, channel=channel, device=device, properties=properties
    )


def browse(cohort: Cohort) -> list[Piece]:
    """Return the browsing events of a cohort: anonymous first visits, then identified ones."""
    population, journeys = cohort.population, cohort.journeys
    alive_until = journeys.alive_until(cohort.period)
    identified = population.identified_at
    anonymous_until = np.minimum(identified, population.last_seen)
    first = population.first_seen
    pieces = [
        _pages(cohort, "pa", cohort.occurrences("pa", first, anonymous_until, _ANONYMOUS["pages"])),
        _pages(
            cohort, "pg", cohort.occurrences("pg", identified, alive_until, cohort.typed(_PAGES))
        ),
        _pages(
            cohort,
            "pr",
            cohort.occurrences(
                "pr",
                np.where(identified < NEVER, alive_until, NEVER),
                cohort.period.end,
                _RETURN_VISITS,
            ),
        ),
    ]
    research = (
        ("Product Viewed", "va", "vi", _ANONYMOUS["products"], _PRODUCT_VIEWS),
        ("Products Searched", "sa", "si", _ANONYMOUS["searches"], _SEARCHES),
        ("Article Read", "ra", "ri", _ANONYMOUS["articles"], _ARTICLES),
    )
    for what, before, after, anonymous_rate, rates in research:
        pieces.append(
            _research(
                cohort,
                before,
                cohort.occurrences(before, first, anonymous_until, anonymous_rate),
                what,
            )
        )
        pieces.append(
            _research(
                cohort,
                after,
                cohort.occurrences(after, identified, alive_until, cohort.typed(rates)),
                what,
            )
        )

    app_rate = np.where(population.has_app, cohort.typed(_SCREENS), 0.0)
    screens = cohort.occurrences("sc", identified, alive_until, app_rate)
    screen = pick(SCREENS, cohort.integers("sc.screen", screens, len(SCREENS)))
    pieces.append(
        Piece(
            "sc",
            "screen",
            screens,
            name=screen,
            channel="app",
            device=APP,
            properties=json_object({"name": quoted(screen)}),
            context=cohort.names.context.take(screens.customer),
        )
    )

    ethics = cohort.occurrences("ev", identified, alive_until, cohort.typed(_ETHICS))
    topic = cohort.integers("ev.topic", ethics, len(ETHICS_TOPICS))
    pieces.append(
        Piece(
            "ev",
            "track",
            ethics,
            event="Ethics Content Viewed",
            device=WEB,
            properties=json_object(
                {
                    "topic": quoted(pick(ETHICS_TOPICS, topic)),
                    "content_id": quoted(
                        pc.binary_join_element_wise("ethics-", integer(topic), "")
                    ),
                }
            ),
        )
    )
    return pieces
