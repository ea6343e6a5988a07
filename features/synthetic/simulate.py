"""Simulate one chunk of accounts: latent health, contracts and renewals, then every raw source.

Each account carries a latent health that evolves weekly (mean-reverting random walk with shocks:
champion leaves, outage, price rise, onboarding, feature launch). Every observed signal is a noisy,
seasonal, partly missing function of it, and renewal decisions depend on health near the renewal
date plus a factor no data shows — so no model can be perfect. All work is vectorised over
accounts; the only Python loops run over weeks and contract rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features import contract as c
from features.synthetic import profiles as p

THETA, SIGMA = 0.05, 0.12  # weekly mean reversion and noise of latent health
BETA, UNOBSERVED_SD, PRICE_EFFECT = 1.6, 0.8, -0.5  # renewal logit = alpha + BETA*h + ...
SHOCK_P = {"champion": 0.004, "outage": 0.003, "price": 0.0015}
LAUNCH_EVERY, LAUNCH_FIRST = 26, 10
DRIFT_USAGE_FACTOR, DRIFT_PRICE_FACTOR = 0.55, 1.15
SEG_NAMES = c.SEGMENTS
DAY_S = 86_400


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Window:
    """The simulated period, in days since the Unix epoch (inclusive)."""

    start: int
    end: int
    drift_start: int | None  # first day of the drifted period, if any

    @property
    def days(self) -> int:
        return self.end - self.start + 1

    @property
    def weeks(self) -> int:
        return -(-self.days // 7)


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar month arithmetic on epoch days, clipping to the month's last day."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + months.astype(np.int64)
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first + np.minimum(dom, length - 1)).astype(np.int64)


def simulate_latent(
    rng: np.random.Generator, seg: np.ndarray, created_week: np.ndarray, weeks: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weekly latent health (n x weeks) and the shock indicators that moved it."""
    n = len(seg)
    mean = np.array([p.PROFILES[s].health_mean for s in SEG_NAMES])[seg] + rng.normal(0, 0.6, n)
    cur = mean + rng.normal(0, 0.5, n)
    shocks = {k: rng.random((n, weeks)) < v for k, v in SHOCK_P.items()}
    onboard_ok = rng.random(n) < 0.55
    adopt_draw = rng.random((n, weeks))
    eps = rng.normal(0, SIGMA, (n, weeks)).astype(np.float32)
    launch_adopted = np.zeros((n, weeks), dtype=bool)
    h = np.empty((n, weeks), dtype=np.float32)
    for w in range(weeks):
        mean = mean - 0.4 * shocks["champion"][:, w] - 0.15 * shocks["price"][:, w]
        impulse = (
            -0.3 * shocks["champion"][:, w]
            - 0.7 * shocks["outage"][:, w]
            - 0.3 * shocks["price"][:, w]
        )
        starting = created_week == w
        impulse = impulse + starting * np.where(onboard_ok, 0.6, -0.3)
        if w >= LAUNCH_FIRST and (w - LAUNCH_FIRST) % LAUNCH_EVERY == 0:
            adopted = adopt_draw[:, w] < sigmoid(cur)
            launch_adopted[:, w] = adopted
            impulse = impulse + 0.25 * adopted
        cur = cur + THETA * (mean - cur) + eps[:, w] + impulse
        h[:, w] = cur
    shocks["launch_adopted"] = launch_adopted
    shocks["onboarding"] = (created_week[:, None] == np.arange(weeks)) & onboard_ok[:, None]
    return h, shocks


def window_mean(cum: np.ndarray, rows: np.ndarray, last: np.ndarray, span: int) -> np.ndarray:
    """Mean of a row-wise quantity over columns (last-span, last], from its cumulative sum."""
    lo = np.maximum(last - span + 1, 0)
    return (cum[rows, last + 1] - cum[rows, lo]) / (last + 1 - lo)


def cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0], x.shape[1] + 1), dtype=np.float64)
    np.cumsum(x, axis=1, out=out[:, 1:])
    return out


class Chunk:
    """Simulates `n` accounts numbered from `first`; `tables()` returns every source as Arrow."""

    def __init__(
        self,
        rng: np.random.Generator,
        first: int,
        n: int,
        win: Window,
        segment_mix: np.ndarray,
        alpha: np.ndarray,
        new_logo_share: float = 0.25,
    ):
        self.rng, self.first, self.n, self.win = rng, first, n, win
        self.alpha = alpha  # renewal intercept per (segment, monthly term?)
        r = rng
        self.seg = r.choice(len(SEG_NAMES), size=n, p=segment_mix)
        self.prof = [p.PROFILES[s] for s in SEG_NAMES]
        new = r.random(n) < new_logo_share
        self.created_day = np.where(
            new, r.integers(0, max(win.days - 14, 1), n), -r.integers(30, 5 * 365, n)
        )  # relative to window start
        self.h, self.shocks = simulate_latent(
            r, self.seg, np.where(new, self.created_day // 7, -1), win.weeks
        )
        self.account_ids = pc.binary_join_element_wise(
            "A", pc.utf8_lpad(pa.array(np.arange(first, first + n)).cast(pa.string()), 7, "0"), ""
        )

    # ---------------------------------------------------------------- contracts and renewals
    def contracts(self) -> None:
        r, n, win = self.rng, self.n, self.win
        term = np.empty(n, dtype=np.int64)
        for i, prof in enumerate(self.prof):
            idx = np.nonzero(self.seg == i)[0]
            months, share = zip(*prof.terms, strict=True)
            term[idx] = r.choice(months, size=len(idx), p=share)
        created = win.start + self.created_day
        # Full months elapsed between creation and window start -> index of the current contract.
        ws = np.datetime64(win.start, "D")
        cm = created.astype("datetime64[D]").astype("datetime64[M]")
        months_in = (ws.astype("datetime64[M]") - cm).astype(np.int64)
        k = np.maximum(months_in // term, 0)
        k = np.where(add_months(created, (k + 1) * term) - 1 < win.start, k + 1, k)
        arr_med = np.array([pr.arr_median for pr in self.prof])[self.seg]
        arr_sig = np.array([pr.arr_sigma for pr in self.prof])[self.seg]
        seats_med = np.array([pr.seats_median for pr in self.prof])[self.seg]
        seats_sig = np.array([pr.seats_sigma for pr in self.prof])[self.seg]
        seats = np.maximum(1, np.round(seats_med * np.exp(r.normal(0, seats_sig, n)))).astype(int)
        arr = np.round(arr_med * np.exp(r.normal(0, arr_sig, n)) * (seats / seats_med) ** 0.3, 2)
        disc_max = np.array([pr.discount_max for pr in self.prof])[self.seg]
        discount = np.round(np.where(r.random(n) < 0.5, r.random(n) * disc_max, 0.0), 1)
        h_cum = cumsum0(self.h)
        price_cum = cumsum0(self.shocks["price"].astype(np.float32))
        alive = np.ones(n, dtype=bool)
        self.last_day = np.full(n, win.days - 1)
        rows: list[dict[str, np.ndarray]] = []
        rnd = 0
        while True:
            start = add_months(created, (k + rnd) * term)
            end = add_months(created, (k + rnd + 1) * term) - 1
            act = alive & (start <= win.end)
            if not act.any():
                break
            idx = np.nonzero(act)[0]
            decided = end[idx] <= win.end
            week_end = np.clip((end[idx] - win.start) // 7, 0, win.weeks - 1)
            h_end = window_mean(h_cum, idx, week_end, 8)
            recent_price = window_mean(price_cum, idx, week_end, 26) > 0
            known = (
                self.alpha[self.seg[idx], (term[idx] == 1).astype(int)]
                + BETA * h_end
                + PRICE_EFFECT * recent_price
            )
            p_renew = sigmoid(known + r.normal(0, UNOBSERVED_SD, len(idx)))
            # The truth a model could know: the unobserved part averaged out (probit approximation
            # of the logistic-normal mean), not this decision's draw of it.
            p_known = sigmoid(known / np.sqrt(1 + np.pi * UNOBSERVED_SD**2 / 8))
            renew = r.random(len(idx)) < p_renew
            q = sigmoid(h_end)
            u = r.random(len(idx))
            outcome = np.where(
                ~renew, 1, np.where(u < 0.02 + 0.2 * q, 2, np.where(u > 1 - 0.15 * (1 - q), 3, 0))
            )
            outcome = np.where(decided, outcome, -1)
            rows.append(
                dict(
                    acct=idx,
                    rnd=np.full(len(idx), rnd),
                    start=start[idx],
                    end=end[idx],
                    term=term[idx],
                    arr=arr[idx].copy(),
                    seats=seats[idx].copy(),
                    discount=discount[idx].copy(),
                    outcome=outcome,
                    p_true=p_known,
                    h_end=h_end,
                )
            )
            churned = idx[outcome == 1]
            alive[churned] = False
            self.last_day[churned] = end[churned] - win.start
            # The next term's ARR and seats follow the decision.
            grow = np.where(
                outcome == 2,
                r.uniform(1.1, 1.5, len(idx)),
                np.where(
                    outcome == 3, r.uniform(0.6, 0.9, len(idx)), 1 + r.uniform(0, 0.05, len(idx))
                ),
            )
            arr[idx] = np.round(arr[idx] * grow, 2)
            seats[idx] = np.maximum(1, np.round(seats[idx] * np.where(outcome >= 2, grow, 1)))
            rnd += 1
        self.k = {key: np.concatenate([row[key] for row in rows]) for key in rows[0]}
        self.term = term
        self.n_rounds = rnd

    def _per_day(self, values: np.ndarray) -> np.ndarray:
        """Spread a per-contract quantity over days (n x days), 0 outside any contract."""
        out = np.zeros((self.n, self.win.days), dtype=np.float64)
        day = np.arange(self.win.days)
        k = self.k
        for rnd in range(self.n_rounds):
            sel = np.nonzero(k["rnd"] == rnd)[0]
            a = k["acct"][sel]
            s = (k["start"][sel] - self.win.start)[:, None]
            e = (k["end"][sel] - self.win.start)[:, None]
            m = (day >= s) & (day <= e)
            out[a] = np.where(m, values[sel][:, None], out[a])
        return out

    # ---------------------------------------------------------------- observed signals
    def usage(self) -> pa.Table:
        r, win = self.rng, self.win
        day = np.arange(win.days)
        alive = (day >= np.maximum(self.created_day, 0)[:, None]) & (day <= self.last_day[:, None])
        alive &= r.random(alive.shape) >= 0.007  # telemetry gaps
        seats_d = self._per_day(self.k["seats"].astype(np.float64))
        a, d = np.nonzero(alive & (seats_d > 0))
        w = d // 7
        hq = self.h[a, w]
        q = sigmoid(hq)
        # Accounts differ in how intensely they use the product whatever their health, so usage
        # levels say less than usage trends do.
        offset = r.normal(0, 0.15, self.n)[a]
        propensity = np.exp(r.normal(0, 0.45, self.n))[a]
        seats = seats_d[a, d]
        seats_used = np.round(seats * np.clip(0.3 + 0.5 * q + offset, 0.05, 1.0)).astype(np.int64)
        weekday = (win.start + d + 3) % 7
        wf = np.where(weekday < 5, 1.0, np.where(weekday == 5, 0.25, 0.18))
        p_active = np.clip((0.05 + 0.6 * q) * propensity, 0.01, 0.95) * wf
        if win.drift_start is not None:
            drifted = (self.seg[a] == 0) & (win.start + d >= win.drift_start)
            p_active = np.where(drifted, p_active * DRIFT_USAGE_FACTOR, p_active)
        active = r.binomial(seats_used, np.clip(p_active, 0, 1))
        logins = active + r.poisson(active * 0.7)
        sessions = logins + r.poisson(logins * 0.25)
        launches = np.cumsum(self.shocks["launch_adopted"], axis=1)[a, w]
        adopt = sigmoid(hq + r.normal(0, 0.5, self.n)[a] + 0.3 * launches - 0.5)
        kfe = r.poisson(active * (0.3 + 2.5 * adopt))
        distinct = np.where(active > 0, r.binomial(p.N_PRODUCT_FEATURES, 0.05 + 0.4 * adopt), 0)
        return pa.table(
            {
                "account_id": self.account_ids.take(pa.array(a)),
                "date": pa.array((win.start + d).astype(np.int32), pa.int32()).cast(pa.date32()),
                "active_users": pa.array(active, pa.int32()),
                "logins": pa.array(logins, pa.int32()),
                "sessions": pa.array(sessions, pa.int32()),
                "key_feature_events": pa.array(kfe, pa.int32()),
                "distinct_features_used": pa.array(distinct, pa.int32()),
                "seats_used": pa.array(seats_used, pa.int32()),
            }
        )

    def _alive_weeks(self) -> np.ndarray:
        mid = np.minimum(np.arange(self.win.weeks) * 7 + 3, self.win.days - 1)
        return (mid >= np.maximum(self.created_day, 0)[:, None]) & (mid <= self.last_day[:, None])

    def _events(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Turn per account-week counts into event rows: (account index, epoch seconds)."""
        counts = np.where(self._alive_weeks(), counts, 0)
        a, w = np.nonzero(counts)
        rep = counts[a, w]
        a, w = np.repeat(a, rep), np.repeat(w, rep)
        t = (self.win.start + w * 7) * DAY_S + self.rng.integers(
            8 * 3600, 7 * DAY_S - 6 * 3600, len(a)
        )
        day = t // DAY_S - self.win.start
        keep = (day <= self.last_day[a]) & (day >= self.created_day[a]) & (day < self.win.days)
        order = np.lexsort((t[keep], a[keep]))
        return a[keep][order], t[keep][order]

    def _rate(self, attr: str) -> np.ndarray:
        return np.array([getattr(pr, attr) for pr in self.prof])[self.seg][:, None]

    def engagement(self) -> pa.Table:
        r = self.rng
        q = sigmoid(self.h)
        sent = r.poisson(np.broadcast_to(self._rate("email_rate"), q.shape))
        opened = r.binomial(sent, 0.15 + 0.6 * q)
        clicked = r.binomial(opened, 0.05 + 0.35 * q)
        kinds = {
            "email_sent": sent,
            "email_opened": opened,
            "email_clicked": clicked,
            "webinar_attended": r.poisson(self._rate("webinar_rate") * (0.2 + 1.6 * q)),
            "meeting": r.poisson(self._rate("meeting_rate") * (0.4 + 1.2 * q)),
            "business_review": r.binomial(
                1, np.clip(self._rate("review_rate") * (0.3 + 1.2 * q), 0, 1)
            ),
            "exec_sponsor_contact": r.poisson(self._rate("exec_rate") * (0.2 + 1.6 * q)),
            # Champion departures are recorded by the CSM most of the time, not always.
            "champion_change": (self.shocks["champion"] & (r.random(q.shape) < 0.8)).astype(int),
        }
        return self._event_table(kinds, "EV")[0]

    def enablement(self) -> pa.Table:
        r = self.rng
        q = sigmoid(self.h)
        onboarding = self.shocks["onboarding"]
        boost = np.zeros_like(q)
        for lag in range(6):  # trainings cluster in the weeks after a successful onboarding
            boost[:, lag:] += onboarding[:, : q.shape[1] - lag]
        kinds = {
            "training_completed": r.poisson(0.01 + 0.08 * q**2 + 0.5 * boost),
            "user_certified": r.poisson(0.003 + 0.04 * q**3 + 0.1 * boost),
        }
        table, acct_idx = self._event_table(kinds, "EN")
        seats_scale = np.sqrt(np.array([pr.seats_median for pr in self.prof]))[self.seg]
        users = 1 + r.poisson(0.3 * seats_scale[acct_idx])
        return table.append_column("users", pa.array(users, pa.int32()))

    def _event_table(
        self, kinds: dict[str, np.ndarray], prefix: str
    ) -> tuple[pa.Table, np.ndarray]:
        """Event rows for several kinds of per account-week counts, and each row's account index."""
        accts, times, types = [], [], []
        for code, (_, counts) in enumerate(kinds.items()):
            a, t = self._events(counts)
            accts.append(a)
            times.append(t)
            types.append(np.full(len(a), code))
        a, t, k = np.concatenate(accts), np.concatenate(times), np.concatenate(types)
        order = np.lexsort((t, a))
        a, t, k = a[order], t[order], k[order]
        return pa.table(
            {
                "event_id": self._ids(prefix, len(a)),
                "account_id": self.account_ids.take(pa.array(a)),
                "occurred_at": _ts(t),
                "event_type": pa.array(np.array(list(kinds))[k]),
            }
        ), a

    def _ids(self, prefix: str, count: int) -> pa.Array:
        ids = pa.array(np.arange(count)).cast(pa.string())
        chunk = f"{prefix}{self.first:08d}-"
        return pc.binary_join_element_wise(chunk, ids, "")

    def tickets(self) -> pa.Table:
        r = self.rng
        q = sigmoid(self.h)
        seats_scale = (np.array([pr.seats_median for pr in self.prof])[self.seg] / 50) ** 0.4
        propensity = r.gamma(0.5, 2.0, self.n) * seats_scale  # many accounts rarely open tickets
        lam = self._rate("ticket_rate") * propensity[:, None] * np.exp(-0.8 * self.h)
        base = r.poisson(lam)
        outage = np.where(self.shocks["outage"], 1 + r.poisson(1.5, q.shape), 0)
        a_b, t_b = self._events(base)
        a_o, t_o = self._events(outage)
        a, t = np.concatenate([a_b, a_o]), np.concatenate([t_b, t_o])
        from_outage = np.r_[np.zeros(len(a_b), bool), np.ones(len(a_o), bool)]
        qa = q[a, np.minimum((t // DAY_S - self.win.start) // 7, self.win.weeks - 1)]
        u = r.random(len(a))
        p1 = np.where(from_outage, 0.5, 0.02 + 0.08 * (1 - qa))
        severity = np.where(u < p1, 1, np.where(u < p1 + 0.15, 2, np.where(u < p1 + 0.6, 3, 4)))
        cat = np.empty(len(a), dtype=np.int64)
        for sev, weights in p.TICKET_CATEGORY_WEIGHTS.items():
            m = severity == sev
            cat[m] = r.choice(len(weights), size=m.sum(), p=np.array(weights) / sum(weights))
        cat = np.where(
            from_outage & (r.random(len(a)) < 0.7), c.TICKET_CATEGORIES.index("outage"), cat
        )
        resp_h = r.lognormal(np.log(np.array([0, 0.5, 2, 6, 12])[severity]), 0.8)
        resolve_h = r.lognormal(
            np.log(np.array([0, 8, 30, 70, 110])[severity]) - 0.3 * (qa - 0.5), 0.9
        )
        first = t + (resp_h * 3600).astype(np.int64)
        resolved = first + (resolve_h * 3600).astype(np.int64)
        now = (self.win.end + 1) * DAY_S
        escalated = r.random(len(a)) < 0.02 + 0.3 * (severity == 1) + 0.1 * (1 - qa)
        rated = (r.random(len(a)) < 0.35) & (resolved < now)
        csat = np.clip(
            np.round(1.2 + 3.8 * qa - 0.004 * resolve_h + r.normal(0, 0.7, len(a))), 1, 5
        )
        order = np.lexsort((t, a))
        return pa.table(
            {
                "ticket_id": self._ids("T", len(a)),
                "account_id": self.account_ids.take(pa.array(a[order])),
                "opened_at": _ts(t[order]),
                "first_response_at": _ts(first[order], mask=(first >= now)[order]),
                "resolved_at": _ts(resolved[order], mask=(resolved >= now)[order]),
                "severity": pa.array(severity[order], pa.int32()),
                "category": pa.array(np.array(c.TICKET_CATEGORIES)[cat[order]]),
                "escalated": pa.array(escalated[order]),
                "csat": pa.array(csat[order].astype(np.int32), pa.int32(), mask=~rated[order]),
            }
        )

    def surveys(self) -> pa.Table:
        r, win = self.rng, self.win
        weeks = np.arange(win.weeks)
        nps_phase = r.integers(0, 26, self.n)[:, None]
        csat_phase = r.integers(0, 13, self.n)[:, None]
        contacts = self._rate("survey_contacts").astype(int)
        csat_on = r.random(self.n)[:, None] < self._rate("csat_survey_share")
        nps_counts = np.where((weeks - nps_phase) % 26 == 0, contacts, 0)
        csat_counts = np.where(((weeks - csat_phase) % 13 == 0) & csat_on, 1, 0)
        a_n, t_n = self._events(nps_counts)
        a_c, t_c = self._events(csat_counts)
        a, t = np.concatenate([a_n, a_c]), np.concatenate([t_n, t_c])
        is_nps = np.r_[np.ones(len(a_n), bool), np.zeros(len(a_c), bool)]
        qa = sigmoid(self.h[a, np.minimum((t // DAY_S - win.start) // 7, win.weeks - 1)])
        resp_t = t + (r.exponential(3.0, len(a)) * DAY_S).astype(np.int64)
        now = (win.end + 1) * DAY_S
        responded = (r.random(len(a)) < 0.1 + 0.45 * qa) & (resp_t < now)
        nps = np.clip(np.round(3.5 + 6.5 * qa + r.normal(0, 1.6, len(a))), 0, 10).astype(np.int32)
        csat = np.clip(np.round(1.3 + 3.7 * qa + r.normal(0, 0.7, len(a))), 1, 5).astype(np.int32)
        role = r.choice(len(c.RESPONDENT_ROLES), size=len(a), p=p.ROLE_WEIGHTS)
        order = np.lexsort((t, a))
        return pa.table(
            {
                "survey_id": self._ids("S", len(a)),
                "account_id": self.account_ids.take(pa.array(a[order])),
                "sent_at": _ts(t[order]),
                "responded_at": _ts(resp_t[order], mask=~responded[order]),
                "survey_type": pa.array(np.where(is_nps, "nps", "csat")[order]),
                "nps": pa.array(nps[order], pa.int32(), mask=~(responded & is_nps)[order]),
                "csat": pa.array(csat[order], pa.int32(), mask=~(responded & ~is_nps)[order]),
                "respondent_role": pa.array(np.array(c.RESPONDENT_ROLES)[role[order]]),
            }
        )

    def invoices(self) -> pa.Table:
        r, win, k = self.rng, self.win, self.k
        acct = k["acct"]
        monthly_bill = r.random(self.n) < self._rate("monthly_billing_share")[:, 0]
        period = np.where((k["term"] == 1) | monthly_bill[acct], 1, 12)
        n_inv = -(-k["term"] // period)
        row = np.repeat(np.arange(len(acct)), n_inv)
        j = np.arange(len(row)) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
        a = acct[row]
        issued = add_months(k["start"][row], j * period[row])
        keep = (
            (issued <= win.end) & (issued >= win.start) & (issued - win.start <= self.last_day[a])
        )
        row, a, issued = row[keep], a[keep], issued[keep]
        price = np.ones(len(row))
        if win.drift_start is not None:
            price = np.where(
                (self.seg[a] == 1) & (issued >= win.drift_start), DRIFT_PRICE_FACTOR, 1.0
            )
        amount = np.round(k["arr"][row] * period[row] / 12 * price, 2)
        due = issued + np.array([pr.due_days for pr in self.prof])[self.seg[a]]
        qa = sigmoid(self.h[a, np.minimum((issued - win.start) // 7, win.weeks - 1)])
        late = r.random(len(row)) < 0.04 + 0.45 * (1 - qa) ** 2
        late_days = np.ceil(r.gamma(2.0, 6 + 20 * (1 - qa))).astype(np.int64)
        early = (r.random(len(row)) * (due - issued)).astype(np.int64)
        paid = np.where(late, due + late_days, issued + early)
        never = late & (r.random(len(row)) < 0.1 * (1 - qa))
        unpaid = never | (paid > win.end)
        card = r.random(self.n) < self._rate("card_share")[:, 0]
        failed = np.where(card[a], r.poisson(0.03 + 0.8 * (1 - qa) ** 3), 0)
        order = np.lexsort((issued, a))
        return pa.table(
            {
                "invoice_id": self._ids("I", len(row)),
                "account_id": self.account_ids.take(pa.array(a[order])),
                "issued_at": _date(issued[order]),
                "due_at": _date(due[order]),
                "paid_at": _date(paid[order], mask=unpaid[order]),
                "amount": pa.array(amount[order]),
                "discount_pct": pa.array(k["discount"][row][order]),
                "failed_payments": pa.array(failed[order], pa.int32()),
            }
        )

    def plan_changes(self) -> pa.Table:
        r, win = self.rng, self.win
        q = sigmoid(self.h)
        rates = {
            "upgrade": 0.004 * q**2,
            "downgrade": 0.004 * (1 - q) ** 2,
            "seats_added": 0.006 * q,
            "seats_removed": 0.005 * (1 - q),
            "price_increase": self.shocks["price"].astype(float),
        }
        factors = {
            "upgrade": (1.1, 1.6),
            "downgrade": (0.5, 0.9),
            "seats_added": (1.05, 1.3),
            "seats_removed": (0.7, 0.95),
            "price_increase": (1.05, 1.2),
        }
        arr_d = self._per_day(self.k["arr"])
        parts = []
        for code, (kind, rate) in enumerate(rates.items()):
            counts = r.random(q.shape) < rate if kind != "price_increase" else rate.astype(bool)
            a, t = self._events(counts.astype(int))
            lo, hi = factors[kind]
            parts.append((a, t // DAY_S, np.full(len(a), code), r.uniform(lo, hi, len(a))))
        if win.drift_start is not None:  # a price change for mid-market in the drifted period
            mm = np.nonzero((self.seg == 1) & (self.last_day + win.start >= win.drift_start))[0]
            mm = mm[r.random(len(mm)) < 0.7]
            day = win.drift_start + r.integers(0, 14, len(mm))
            mm, day = mm[day <= win.end], day[day <= win.end]
            parts.append((mm, day, np.full(len(mm), 4), np.full(len(mm), DRIFT_PRICE_FACTOR)))
        a, day, kind, factor = (np.concatenate(x) for x in zip(*parts, strict=True))
        before = arr_d[a, np.clip(day - win.start, 0, win.days - 1)]
        keep = before > 0
        a, day, kind, factor, before = a[keep], day[keep], kind[keep], factor[keep], before[keep]
        order = np.lexsort((day, a))
        return pa.table(
            {
                "change_id": self._ids("P", len(a)),
                "account_id": self.account_ids.take(pa.array(a[order])),
                "changed_at": _date(day[order]),
                "change_type": pa.array(np.array(list(rates))[kind[order]]),
                "arr_before": pa.array(np.round(before[order], 2)),
                "arr_after": pa.array(np.round(before[order] * factor[order], 2)),
            }
        )

    def accounts(self) -> pa.Table:
        r, n = self.rng, self.n
        names = (
            np.array(p.NAME_PREFIXES)[r.integers(0, len(p.NAME_PREFIXES), n)].astype(object)
            + " "
            + np.array(p.NAME_SUFFIXES)[r.integers(0, len(p.NAME_SUFFIXES), n)]
        )
        csm = (
            np.array(p.CSM_FIRST)[r.integers(0, len(p.CSM_FIRST), n)].astype(object)
            + " "
            + np.array(p.CSM_LAST)[r.integers(0, len(p.CSM_LAST), n)]
        )
        tech_touch = (self.seg == 0) & (r.random(n) < 0.3)  # SMB accounts without a named CSM
        created_s = (self.win.start + self.created_day) * DAY_S + r.integers(0, DAY_S, n)
        return pa.table(
            {
                "account_id": self.account_ids,
                "account_name": pa.array(names.astype(str)),
                "segment": pa.array(np.array(SEG_NAMES)[self.seg]),
                "industry": pa.array(np.array(p.INDUSTRIES)[r.integers(0, len(p.INDUSTRIES), n)]),
                "region": pa.array(
                    np.array(p.REGIONS)[r.choice(len(p.REGIONS), n, p=p.REGION_WEIGHTS)]
                ),
                "csm_owner": pa.array(csm.astype(str), mask=tech_touch),
                "created_at": _ts(created_s),
            }
        )

    def contracts_table(self) -> pa.Table:
        k = self.k
        order = np.lexsort((k["rnd"], k["acct"]))
        acct_ids = self.account_ids.take(pa.array(k["acct"][order]))
        cid = pc.binary_join_element_wise(
            "C",
            pc.utf8_slice_codeunits(acct_ids, 1),
            "-",
            pa.array(k["rnd"][order]).cast(pa.string()),
            "",
        )
        outcome = k["outcome"][order]
        names = np.array((*c.OUTCOMES, ""))
        return pa.table(
            {
                "contract_id": cid,
                "account_id": acct_ids,
                "start_date": _date(k["start"][order]),
                "end_date": _date(k["end"][order]),
                "term_months": pa.array(k["term"][order], pa.int32()),
                "arr": pa.array(k["arr"][order]),
                "seats": pa.array(k["seats"][order], pa.int32()),
                "outcome": pa.array(names[outcome], mask=outcome < 0),
            }
        )

    def truth(self) -> tuple[pa.Table, pa.Table]:
        """Generator-only ground truth: the true renewal probability and the latent health."""
        k = self.k
        decided = k["outcome"] >= 0
        renewals = pa.table(
            {
                "account_id": self.account_ids.take(pa.array(k["acct"][decided])),
                "segment": pa.array(np.array(SEG_NAMES)[self.seg[k["acct"][decided]]]),
                "term_months": pa.array(k["term"][decided], pa.int32()),
                "end_date": _date(k["end"][decided]),
                "latent_health_at_end": pa.array(k["h_end"][decided]),
                "true_renew_probability": pa.array(k["p_true"][decided]),
                "renewed": pa.array(k["outcome"][decided] != 1),
            }
        )
        weeks = np.arange(0, self.win.weeks, 4)
        a = np.repeat(np.arange(self.n), len(weeks))
        w = np.tile(weeks, self.n)
        alive = (w * 7 >= self.created_day[a]) & (w * 7 <= self.last_day[a])
        latent = pa.table(
            {
                "account_id": self.account_ids.take(pa.array(a[alive])),
                "week_start": _date(self.win.start + w[alive] * 7),
                "latent_health": pa.array(self.h[a[alive], w[alive]]),
            }
        )
        return renewals, latent


def _ts(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(seconds.astype(np.int64) * 1000, pa.int64(), mask=mask).cast(
        pa.timestamp("ms", tz="UTC")
    )


def _date(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32(), mask=mask).cast(pa.date32())
