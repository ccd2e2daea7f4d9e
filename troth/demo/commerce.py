"""Purchases: Order Completed (Pareto/NBD timing, Gamma-Gamma-like spend) and Order Refunded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import APP, WEB, Piece
from troth.demo.jsontext import integer, json_object, number, quoted
from troth.demo.marketing import plan_campaigns
from troth.demo.period import DAY, MONTH
from troth.demo.population import TYPOLOGIES, by_typology
from troth.demo.randomness import draw_gamma

__all__ = ["purchase"]

_DEAL_SEEKER = list(TYPOLOGIES).index("deal_seeker")
# Deal seekers buy at full price only this fraction of their purchase rate; the rest of
# their orders follow sale campaigns.
_FULL_PRICE_SHARE = 0.15
_SPEND_SHAPE = 4.0  # Gamma shape of one order's value around the customer's mean
_REFUNDS = by_typology(
    deal_seeker=0.05,
    loyal_fan=0.02,
    quietly_retained=0.02,
    unhappy_complainer=0.15,
    vocal_advocate=0.02,
    browser=0.04,
    lapsed=0.05,
)
_CHANNELS = ("web", "app", "store")


def _sale_orders(cohort: Cohort, since: np.ndarray, until: np.ndarray) -> Occurrences:
    """Return deal seekers' orders: some sale campaigns each convert, a day or so later."""
    campaigns = plan_campaigns(cohort.period)
    sale_time = campaigns.time[campaigns.sale]
    population = cohort.population
    sales_per_month = max(len(sale_time), 1) / (cohort.period.span / MONTH)
    chance = np.minimum(
        cohort.journeys.orders_per_month * (1 - _FULL_PRICE_SHARE) / sales_per_month, 0.9
    )
    chance = np.where(population.typology == _DEAL_SEEKER, chance, 0.0)
    stream = cohort.stream("od")
    number_ = np.arange(len(sale_time))
    buys = (
        (sale_time[None, :] >= since[:, None])
        & (sale_time[None, :] < until[:, None])
        & (stream.uniform(population.index[:, None], number_[None, :]) < chance[:, None])
    )
    customer, sale = np.nonzero(buys)
    lag = stream.exponential(population.index[customer], sale, lane=1) * DAY
    return Occurrences(customer, sale, sale_time[sale] + lag.astype(np.int64))


def _order_piece(cohort: Cohort, code: str, at: Occurrences, discounted: np.ndarray) -> list[Piece]:
    """Return Order Completed for the occurrences, and Order Refunded for some of them."""
    population, journeys = cohort.population, cohort.journeys
    index = population.index[at.customer]
    stream = cohort.stream(code + ".order")
    value = journeys.spend_mean[at.customer] * draw_gamma(
        _SPEND_SHAPE, 1.0, stream.normal(index, at.n)
    )
    discount = np.where(discounted, np.round(0.1 + 0.3 * stream.uniform(index, at.n, 3), 1), 0.0)
    revenue = np.maximum(np.round(value * (1 - discount), 2), 1.0)
    products = 1 + (stream.exponential(index, at.n, 4) * 1.2).astype(np.int64)
    channel_number = stream.choice(index, np.array([0.55, 0.2, 0.25]), at.n)
    channel_number = np.where(
        (channel_number == 1) & ~population.has_app[at.customer], 0, channel_number
    )
    device = np.choose(channel_number, [WEB, APP, 0])
    order_id = pc.binary_join_element_wise("o", integer(index), "-", code, integer(at.n), "")
    coupon = pc.binary_join_element_wise("SAVE", integer(np.rint(discount * 100)), "")
    properties = json_object(
        {
            "order_id": quoted(order_id),
            "revenue": number(revenue),
            "currency": '"EUR"',
            "products": integer(products),
        },
        optional={
            "discount": (number(discount), discounted),
            "coupon": (quoted(coupon), discounted),
        },
    )
    refunded = cohort.chance(code + ".refund", at, cohort.typed(_REFUNDS)[at.customer])
    refunds = cohort.delay(code + ".refund", at.where(refunded), 6 * DAY)
    refund_properties = json_object(
        {
            "order_id": quoted(order_id.filter(pa.array(refunded))),
            "revenue": number(revenue[refunded]),
            "currency": '"EUR"',
        }
    )
    refund_channel = np.where(channel_number[refunded] == 2, "store", "web")
    return [
        Piece(
            code,
            "track",
            at,
            event="Order Completed",
            channel=pa.array(_CHANNELS).take(channel_number),
            device=device,
            properties=properties,
        ),
        Piece(
            code + "x",
            "track",
            refunds,
            event="Order Refunded",
            channel=pa.array(refund_channel),
            properties=refund_properties,
        ),
    ]


def purchase(cohort: Cohort) -> list[Piece]:
    """Return a cohort's orders: the first at its first interaction, repeats while alive."""
    journeys, population = cohort.journeys, cohort.population
    since = journeys.at_least("interaction")
    until = journeys.alive_until(cohort.period)
    first = cohort.once(since, since < until)
    deal = population.typology == _DEAL_SEEKER
    rate = journeys.orders_per_month * np.where(deal, _FULL_PRICE_SHARE, 1.0)
    # Repeat purchases: a Poisson process while alive, as Pareto/NBD assumes.
    repeat = cohort.occurrences("or", since, until, rate)
    sales = _sale_orders(cohort, since, until)
    welcome = cohort.uniform("of.welcome", first) < 0.3
    casual = cohort.uniform("or.discount", repeat) < 0.1
    return [
        *_order_piece(cohort, "of", first, welcome),
        *_order_piece(cohort, "or", repeat, casual),
        *_order_piece(cohort, "od", sales, np.ones(len(sales), dtype=bool)),
    ]
