-- Answers count on the day they were given, not the day the survey was sent.
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
d as (
    select g.account_id, g.day, n.nps, n.change,
           case when n.nps is not null then g.day end as nps_day,
           coalesce(s.n, 0) as sent, coalesce(a.n, 0) as answered,
           coalesce(a.csat_sum, 0) as csat_sum, coalesce(a.csat_n, 0) as csat_n
    from grid g
    left join nps_day n on n.account_id = g.account_id and n.day = g.day
    left join sent s on s.account_id = g.account_id and s.day = g.day
    left join answered a on a.account_id = g.account_id and a.day = g.day
)
select account_id, day,
    last_value(nps ignore nulls) over wall as nps_latest,
    last_value(change ignore nulls) over wall as nps_change,
    datediff('day', last_value(nps_day ignore nulls) over wall, day) as days_since_last_nps,
    sum(csat_sum) over w180 / nullif(sum(csat_n) over w180, 0) as csat_180d,
    least(sum(answered) over w365 / nullif(sum(sent) over w365, 0), 1.0)
        as survey_response_rate_365d,
    last_value(nps ignore nulls) over wall is not null as has_nps_response
from d
window w180 as (partition by account_id order by day rows between 179 preceding and current row),
       w365 as (partition by account_id order by day rows between 364 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
