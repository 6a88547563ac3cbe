"""The unit of every number in a run's or a Monte Carlo's ``summary.json``, in one table.

A key states its unit by its suffix (``SUFFIXES``: ``pnl_ccy`` is currency, ``spread_mean_ticks``
ticks) or, when its name cannot, by a row of ``KEYS`` (a dotted path; ``*`` matches one or more
characters of the path, ``[]`` stands for a list item). ``docs/summary.md`` is generated from
these tables (tests/test_summary_units.py keeps it in sync and walks real summaries: every
numeric leaf must have a unit here). ``unit_of`` is what the report prints beside each figure.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

#: (suffix of the last key, unit) -- the first match wins, so longer suffixes come first
SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_tick_shares", "ticks × shares (money in integer ticks; × tick_size = currency)"),
    ("_ccy", "currency"),
    ("_currency", "currency"),
    ("_ticks", "ticks (price in units of tick_size)"),
    ("_bps", "basis points"),
    ("_pct", "percent"),
    ("_ns", "nanoseconds"),
    ("_seconds", "seconds"),
    ("_s", "seconds"),
    ("_minutes", "minutes"),
    ("_qty", "shares"),
    ("_ratio", "ratio (dimensionless)"),
    ("_cv", "ratio (coefficient of variation)"),
)

COUNT = "count"
SHARES = "shares"
STAT = "1 (dimensionless statistic)"
FRACTION = "fraction (0–1)"

#: (path pattern, unit) for keys without a unit suffix
KEYS: tuple[tuple[str, str], ...] = (
    # run
    ("seed", "1 (root seed)"),
    ("tick_size", "currency per tick"),
    ("actors", COUNT),
    ("orders", COUNT),
    ("trades", COUNT),
    ("volume", SHARES),
    ("halts", COUNT),
    ("messages_delivered", COUNT),
    ("wakeups_delivered", COUNT),
    ("messages_per_second", "messages per wall-clock second"),
    ("price.*", "currency per share"),
    # desk (actors/desk/analytics.py)
    ("desk.parents", COUNT),
    ("desk.parents_filled", COUNT),
    ("desk.fills", COUNT),
    ("desk.children", COUNT),
    ("desk.decisions", COUNT),
    ("desk.skipped_decisions", COUNT),
    ("desk.round_trips", COUNT),
    ("desk.fill_rate", FRACTION),
    ("desk.win_rate", FRACTION),
    ("desk.position", SHARES),
    ("desk.final_position", SHARES),
    ("desk.max_position", SHARES),
    ("desk.sharpe", "1 (ratio per decision interval, see ratio_horizons)"),
    ("desk.sortino", "1 (ratio per decision interval, see ratio_horizons)"),
    ("desk.sharpe_annual", "1 (annualised ratio)"),
    ("desk.calmar", "1 (ratio over the run, not annualised)"),
    ("desk.kill_events.[].[]", "nanoseconds since midnight"),
    ("desk.position_at_kill", SHARES),
    ("desk.flatten_orders", COUNT),
    ("desk_outcome.*position", SHARES),
    ("desk_outcome.pnl", "currency (= desk.pnl_ccy)"),
    ("desk_outcome.max_drawdown", "currency (= desk.max_drawdown_ccy)"),
    ("desk_outcome.fees", "currency (= desk.fees_ccy; positive paid, negative a net rebate)"),
    ("desk_outcome.pnl_net", "currency (= desk.pnl_net_ccy)"),
    # fees (desksim/analytics/fees.py)
    ("fees.rates.round_to", "currency (each fill's fee is rounded to it)"),
    ("fees.rates.*", "currency per share (positive paid, negative a rebate)"),
    ("fees.*.actors", "count (actors that traded)"),
    ("fees.*.fills", COUNT),
    ("desk_outcome.limit_breaches*", COUNT),
    ("desk_outcome.orders_*", COUNT),
    ("desk_outcome.kill.*_orders", COUNT),
    ("desk_outcome.kill.rejected_by_kind.*", COUNT),
    ("desk_outcome.kill.position_*", SHARES),
    # the worst 15-minute fall and who traded it (desksim/analytics/anatomy.py)
    ("worst_fall.recovered_20m_share", "fraction (0-1) of the fall won back within 20 minutes"),
    (
        "worst_fall.crash_one_sided_share",
        "fraction (0-1) of the crash episode (the fall's start to 20 minutes after its trough) with no bid or no ask",
    ),
    ("worst_fall.by_group.*.bought", SHARES),
    ("worst_fall.by_group.*.sold", SHARES),
    ("worst_fall.by_group.*.net", "shares (bought - sold: the group's position change over the phase)"),
    # OMS (fix/oms.py, as runner.oms_summary presents it)
    ("oms.positions.*.position", SHARES),
    ("oms.orders", COUNT),
    ("oms.live_orders", COUNT),
    ("oms.parents", COUNT),
    ("oms.breaks", COUNT),
    ("oms.counters.*", COUNT),
    ("oms.fix.next_*_seq", "FIX sequence number"),
    ("oms.fix.*", COUNT),
    # reconciliation
    ("reconciliation.position", SHARES),
    # risk officer
    ("risk.breaches", COUNT),
    ("risk.events.*", COUNT),
    ("risk.gate.*", COUNT),
    ("risk.kill_latency_ns.*.[]", "nanoseconds"),
    ("risk.kills.[].canceled", "count (orders cancelled at the exchange)"),
    ("risk.var.*.n", "count (observations)"),
    ("risk.accounts.*.positions.*", SHARES),
    ("risk.accounts.*.open_orders", COUNT),
    ("risk.accounts.*.limit_usage.*", "fraction of the limit (1 = at the limit; above 1: beyond it)"),
    ("risk.var.*.level", FRACTION),
    # realism statistics (desksim/analytics)
    ("realism.n_*", COUNT),
    ("realism.session_minutes", "minutes"),
    ("realism.minutes_no_trade", "count (minutes)"),
    ("realism.abs_acf*", STAT),
    ("realism.acf*", STAT),
    ("realism.corr_*", STAT),
    ("realism.kurtosis_*", STAT),
    ("realism.leverage*", STAT),
    ("realism.*weibull_shape", STAT),
    ("realism.return_std_*", "1 (log return)"),
    ("realism.*_u_shape", "ratio (dimensionless)"),
    ("realism.*_per_new_order", "ratio (per new order)"),
    ("realism.depth_touch_to_trade_size", "ratio (dimensionless)"),
    ("realism.depth_*", SHARES),
    ("realism.order_size_*", SHARES),
    ("realism.trade_size_*", SHARES),
    ("realism.placement_share_*", FRACTION),
    ("realism.frac_*", FRACTION),
    ("realism.spread_mean_price", "currency per share"),
    # Monte Carlo summary (desksim/montecarlo.py)
    ("runs", COUNT),
    ("completed", COUNT),
    ("batch_size", COUNT),
    ("batches", COUNT),
    ("var.*", "the unit in risk_basis.unit (currency for a desk's P&L, % for drawdowns)"),
    ("es.*", "the unit in risk_basis.unit"),
    ("var_ci.*.[]", "the unit in risk_basis.unit"),
    ("es_ci.*.[]", "the unit in risk_basis.unit"),
    ("var_ci_coverage.*", FRACTION),
    ("intervals.confidence", FRACTION),
    ("intervals.min_runs.*", "count (runs)"),
    ("bootstrap.samples", COUNT),
    ("bootstrap.confidence", FRACTION),
    ("pnl.n", COUNT),
    ("pnl.*", "the unit of pnl_metric (desk_pnl: currency; *_pct: percent)"),
    ("events.*.runs", COUNT),
    ("events.*.total", COUNT),
    ("events.*.frequency", FRACTION),
    ("*.n", COUNT),
    ("market.*_pct.*", "percent"),
    ("market.*_s.*", "seconds"),
    ("market.low.*", "currency per share"),
    ("market.trades.*", COUNT),
    ("desk.pnl.*", "currency"),
    ("desk.fees.*", "currency (positive paid, negative a net rebate)"),
    ("desk.pnl_net.*", "currency (pnl - fees)"),
    ("desk.max_drawdown.*", "currency"),
    ("desk.max_position.*", SHARES),
    ("desk.worst_position.*", SHARES),
    ("desk.rejected_in_halts.*", COUNT),
    ("crash.criteria.*.runs", COUNT),
    ("crash.criteria.*.share", FRACTION),
    ("crash.criteria.*.ci.[]", FRACTION),
    ("crash.bootstrap.samples", COUNT),
    ("crash.bootstrap.confidence", FRACTION),
    ("crash.measures.*_pct.*", "percent"),
    ("crash.measures.*_s.*", "seconds"),
    ("crash.measures.*_ratio.*", "ratio (dimensionless)"),
    ("crash.measures.*_share.*", FRACTION),
    ("realism.pass_rates.*", FRACTION),
    ("realism.all_pass_rate", FRACTION),
    ("realism.targets.*.runs", COUNT),
    ("realism.targets.*.share", FRACTION),
    ("realism.targets.*.ci.[]", FRACTION),
    ("realism.targets.*.values.*", "the statistic's own unit (as in a run summary's realism section)"),
    ("realism.all.runs", COUNT),
    ("realism.all.share", FRACTION),
    ("realism.all.ci.[]", FRACTION),
    ("parameters.*", "the sampled parameter's own unit (see docs/scenarios.md)"),
    ("distributions.*", "the sampled parameter's own unit (see docs/scenarios.md)"),
    ("execution.workers", COUNT),
    ("execution.nodes.*", COUNT),
    ("execution.runs_per_second", "runs per wall-clock second"),
)


def unit_of(path: str) -> str | None:
    """The unit of the numeric value at dotted ``path`` (list items as ``[]``), or None if undocumented."""
    last = path.rsplit(".", 1)[-1]
    for suffix, unit in SUFFIXES:
        if last.endswith(suffix):
            return unit
    for pattern, unit in KEYS:
        if fnmatchcase(path, pattern.replace("[]", "[[]]")):  # "[]" is literal, not a character class
            return unit
    return None


def markdown() -> str:
    """The body of docs/summary.md (generated; tests/test_summary_units.py checks it is current)."""
    lines = [
        "# summary.json: the unit of every number",
        "",
        "Generated from `desksim/units.py` (`python -m desksim.units > docs/summary.md`); a test walks real",
        "summaries and fails on any number whose unit is not stated here.",
        "",
        "Money is in **currency** (`*_ccy`) unless the key says `*_tick_shares` (integer ticks × shares, exact,",
        "as the OMS, the risk officer and the reconciliation count it). Prices are in **currency per share**",
        "(`price.*`) or in **ticks** (`*_ticks`). Fees (a scenario's `fees:` section) are in currency,",
        "positive when paid, negative for a rebate; every P&L without `net` in its name is gross of fees.",
        "",
        "## P&L: one number, and what separates the desk's from the account's",
        "",
        "| key | what |",
        "| --- | --- |",
        "| `pnl.account_ccy` | the account's P&L in the OMS books: every fill on the desk's FIX account, "
        "marked at the last trade (`oms.pnl_ccy`) |",
        "| `pnl.desk_ccy` | the desk strategy's own fills, marked at the final mid (`desk.pnl_ccy`) |",
        "| `pnl.difference_ccy` | account − desk = `marks_ccy` + `other_fills_ccy` |",
        "| `pnl.marks_ccy` | the desk's final position × (last trade − final mid) × tick_size |",
        "| `pnl.other_fills_ccy` | fills on the account not made by the desk's strategy (orders sent through "
        "the same OMS by others, e.g. a scripted fat finger), marked at the last trade |",
        "| `pnl.account_fees_ccy`, `pnl.account_net_ccy` | the fees of every fill on the account (from the "
        "exchange's trades table) and the account's P&L net of them |",
        "| `pnl.desk_fees_ccy`, `pnl.desk_net_ccy` | the fees of the desk strategy's own fills (`desk.fees_ccy`) "
        "and its P&L net of them (`desk.pnl_net_ccy`) |",
        "",
        "## Fees (`desksim/analytics/fees.py`)",
        "",
        "A scenario's `fees:` section gives each venue a maker / taker / auction rate per share (negative: a",
        "rebate; an inverted venue pays the taker). The matching never sees fees: the digest is the same with",
        "or without them. Each fill's fee is `rate x qty`, exact in 1e-6 currency units, rounded per fill to",
        "`round_to` (default 0.0001) half away from zero; the liquidity flag comes from the exchange's trades",
        "table (`maker` = the resting order's owner, `taker` = the aggressor's, auction prints: both sides).",
        "",
        "| key | what |",
        "| --- | --- |",
        "| `desk.fees_ccy` | fees of the desk's fills: `fees_paid_ccy` − `rebates_ccy` |",
        "| `desk.pnl_gross_ccy`, `desk.pnl_net_ccy` | `desk.pnl_ccy` (recomputed exactly) and gross − fees |",
        "| `desk.maker_qty`, `taker_qty`, `auction_qty` | the desk's filled shares by liquidity |",
        "| `desk.is_fees_currency`, `desk.is_fees_bps` | fees as an implementation-shortfall component (bps of "
        "arrival × filled, the base of `is_bps`) |",
        "| `desk.total_is_net_currency`, `desk.total_is_net_bps` | `total_is` + fees (bps of arrival × ordered) |",
        "| `fees.rates` | the venue's base rates (currency per share) and `round_to` |",
        "| `fees.venue_take_ccy` | what the venue keeps: every participant's fees − rebates |",
        "| `fees.groups.<group>`, `fees.makers.<actor>` | per agent group (and per market maker): fills, "
        "`maker_qty` / `taker_qty` / `auction_qty`, `pnl_gross_ccy` (marked at the last trade), "
        "`fees_paid_ccy`, `rebates_ccy`, `fees_ccy`, `pnl_net_ccy`; the desk's account is the group named "
        "after the desk |",
        "",
        "## The worst fall and who traded it (`desksim/analytics/anatomy.py`)",
        "",
        "`worst_fall` holds the crash measures of the run's row in a Monte Carlo `runs.parquet` (the worst",
        "15-minute fall of the prints, of the mid and of the 1-minute VWAPs, when it started and bottomed out",
        "in seconds after the open, the share won back within 20 minutes, the three 2010 ratios and the",
        "share of the crash in a one-sided book, `crash_one_sided_share`, a check on the others; NaN is",
        "null, an infinite ratio is the string `inf`) and `by_group.<group>.<phase>`: for each participant",
        "group (the fee table's groups) and phase (`before`: the hour before the fall, `fall`, `recovery`: the",
        "20 minutes after its trough) the shares it `bought` and `sold`, its `net`, its `volume_share_pct` of",
        "the phase's volume and the `taker_share_pct` of its own volume it took as the aggressor.",
        "",
        "## Units by suffix of the key",
        "",
        "| suffix | unit |",
        "| --- | --- |",
        *(f"| `{s}` | {u} |" for s, u in SUFFIXES),
        "",
        "## Units of keys without a unit suffix",
        "",
        "`*` matches any characters of the dotted path; `[]` is an item of a list.",
        "",
        "| key | unit |",
        "| --- | --- |",
        *(f"| `{p}` | {u} |" for p, u in KEYS),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
