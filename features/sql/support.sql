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
           sum(epoch(resolved_at - opened_at) / 3600.0) as hours,
           sum(csat) as csat_sum, count(csat) as csat_n
    from tickets where resolved_at is not null group by all
),
d as (
    select g.account_id, g.day,
           coalesce(o.n, 0) as opened, coalesce(o.sev1, 0) as sev1,
           coalesce(o.escalated, 0) as escalated, coalesce(r.n, 0) as resolved,
           coalesce(r.hours, 0) as hours, coalesce(r.csat_sum, 0) as csat_sum,
           coalesce(r.csat_n, 0) as csat_n
    from grid g
    left join opened o on o.account_id = g.account_id and o.day = g.day
    left join resolved r on r.account_id = g.account_id and r.day = g.day
)
select account_id, day,
    sum(opened) over w90 as tickets_90d,
    sum(sev1) over w90 as sev1_tickets_90d,
    sum(escalated) over w90 as escalations_90d,
    sum(opened) over wall - sum(resolved) over wall as open_tickets,
    sum(hours) over w90 / nullif(sum(resolved) over w90, 0) as mean_hours_to_resolve_90d,
    sum(csat_sum) over w90 / nullif(sum(csat_n) over w90, 0) as ticket_csat_90d,
    sum(opened) over w90 > 0 as has_tickets_90d
from d
window w90 as (partition by account_id order by day rows between 89 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
