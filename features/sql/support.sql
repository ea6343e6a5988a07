-- Opened tickets count on their opening day; resolution time and ticket CSAT on the day the
-- ticket was resolved (before that they were not known).
with opened as (
    select account_id, opened_at::date as day, count(*) as n,
           count(*) filter (where severity = 1) as sev1,
           count(*) filter (where escalated) as escalated
    from tickets group by all
),
resolved as (
    select account_id, resolved_at::date as day, count(*) as n,
           sum(csat) as csat_sum, count(csat) as csat_n
    from tickets where resolved_at is not null group by all
),
-- The median needs every ticket, not daily sums: one row per grid day (hours null) plus one per
-- ticket resolved on a grid day, so the 90-day RANGE frame sees each ticket once.
resolve_hours as (
    select account_id, day, true as is_day, null::double as hours from grid
    union all
    select t.account_id, t.resolved_at::date, false, epoch(t.resolved_at - t.opened_at) / 3600.0
    from tickets t
    semi join grid g on g.account_id = t.account_id and g.day = t.resolved_at::date
    where t.resolved_at is not null
),
median_hours as (
    select account_id, day,
           median(hours) over (partition by account_id order by day
                               range between interval 89 days preceding and current row) as hours
    from resolve_hours
    qualify is_day
),
d as (
    select g.account_id, g.day,
           coalesce(o.n, 0) as opened, coalesce(o.sev1, 0) as sev1,
           coalesce(o.escalated, 0) as escalated, coalesce(r.n, 0) as resolved,
           coalesce(r.csat_sum, 0) as csat_sum, coalesce(r.csat_n, 0) as csat_n,
           m.hours as median_hours
    from grid g
    left join opened o on o.account_id = g.account_id and o.day = g.day
    left join resolved r on r.account_id = g.account_id and r.day = g.day
    left join median_hours m on m.account_id = g.account_id and m.day = g.day
)
select account_id, day,
    sum(opened) over w90 as tickets_90d,
    sum(sev1) over w90 as sev1_tickets_90d,
    sum(escalated) over w90 as escalations_90d,
    sum(opened) over wall - sum(resolved) over wall as open_tickets,
    median_hours as median_hours_to_resolve_90d,
    sum(csat_sum) over w90 / nullif(sum(csat_n) over w90, 0) as ticket_csat_90d,
    sum(opened) over w90 > 0 as has_tickets_90d
from d
window w90 as (partition by account_id order by day rows between 89 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
