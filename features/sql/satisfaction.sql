-- Answers count on the day they were given, not the day the survey was sent. Only days on the
-- grid count.
--
-- Values can only change on a day a survey was sent or answered: running totals and the latest
-- answer are taken on those days and carried to every grid day by an as-of join; a window over
-- the last N days is the running total minus the one N rows earlier (the grid has exactly one
-- row per account and day).
with nps as (
    select account_id, responded_at::date as day, responded_at, nps,
           nps - lag(nps) over (partition by account_id order by responded_at) as change
    from surveys where nps is not null and responded_at is not null
),
nps_day as (
    select account_id, day, arg_max(nps, responded_at) as nps, arg_max(change, responded_at) as change
    from nps group by all
),
sent as (select account_id, sent_at::date as day, count(*) as n from surveys group by all),
answered as (
    select account_id, responded_at::date as day, count(*) as n,
           sum(csat) as csat_sum, count(csat) as csat_n
    from surveys where responded_at is not null group by all
),
points as (
    select * from (
        select account_id, day from nps_day
        union select account_id, day from sent
        union select account_id, day from answered
    ) semi join grid g using (account_id, day)
),
totals as (
    select p.account_id, p.day,
           last_value(n.nps ignore nulls) over w as nps,
           last_value(n.change ignore nulls) over w as change,
           last_value(case when n.nps is not null then p.day end ignore nulls) over w as nps_day,
           sum(coalesce(s.n, 0)) over w as sent, sum(coalesce(a.n, 0)) over w as answered,
           sum(coalesce(a.csat_sum, 0)) over w as csat_sum,
           sum(coalesce(a.csat_n, 0)) over w as csat_n
    from points p
    left join nps_day n on n.account_id = p.account_id and n.day = p.day
    left join sent s on s.account_id = p.account_id and s.day = p.day
    left join answered a on a.account_id = p.account_id and a.day = p.day
    window w as (partition by p.account_id order by p.day
                 rows between unbounded preceding and current row)
),
d as (
    select g.account_id, g.day, t.nps, t.change, t.nps_day,
           coalesce(t.sent, 0) as sent, coalesce(t.answered, 0) as answered,
           coalesce(t.csat_sum, 0) as csat_sum, coalesce(t.csat_n, 0) as csat_n
    from grid g asof left join totals t on t.account_id = g.account_id and g.day >= t.day
)
select account_id, day,
    nps as nps_latest,
    change as nps_change,
    datediff('day', nps_day, day) as days_since_last_nps,
    (csat_sum - lag(csat_sum, 180, 0) over w) / nullif(csat_n - lag(csat_n, 180, 0) over w, 0)
        as csat_180d,
    least((answered - lag(answered, 365, 0) over w)
          / nullif(sent - lag(sent, 365, 0) over w, 0), 1.0) as survey_response_rate_365d,
    nps is not null as has_nps_response
from d
window w as (partition by account_id order by day)
