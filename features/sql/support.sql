-- Opened tickets count on their opening day; resolution time and ticket CSAT on the day the
-- ticket was resolved (before that they were not known). Only tickets opened/resolved on grid
-- days count.
--
-- Every value can only change on a day a ticket was opened or resolved, or 90 days after a
-- resolution (when it leaves the 90-day window). Running totals and the median are computed on
-- those few days and carried to every grid day by an as-of join; a 90-day sum is then the
-- running total minus the one 90 rows earlier (the grid has exactly one row per account and day).
with opened as (
    select account_id, opened_at::date as day, count(*) as n,
           count(*) filter (where severity = 1) as sev1,
           count(*) filter (where escalated) as escalated
    from tickets semi join grid g on g.account_id = tickets.account_id and g.day = opened_at::date
    group by all
),
resolved_tickets as (
    select account_id, resolved_at::date as day,
           epoch(resolved_at - opened_at) / 3600.0 as hours, csat
    from tickets semi join grid g on g.account_id = tickets.account_id and g.day = resolved_at::date
    where resolved_at is not null
),
resolved as (
    select account_id, day, count(*) as n, sum(csat) as csat_sum, count(csat) as csat_n
    from resolved_tickets group by all
),
points as (
    select account_id, day from opened
    union select account_id, day from resolved
    union select account_id, day + 90 from resolved
),
-- The median needs every ticket, not daily sums: the 90-day RANGE frame of each change day.
median_hours as (
    select account_id, day,
           median(hours) over (partition by account_id order by day
                               range between interval 89 days preceding and current row) as hours
    from (
        select account_id, day, true as is_point, null::double as hours from points
        union all
        select account_id, day, false, hours from resolved_tickets
    )
    qualify is_point
),
totals as (
    select p.account_id, p.day, m.hours as median_hours,
           sum(coalesce(o.n, 0)) over w as opened, sum(coalesce(o.sev1, 0)) over w as sev1,
           sum(coalesce(o.escalated, 0)) over w as escalated,
           sum(coalesce(r.n, 0)) over w as resolved,
           sum(coalesce(r.csat_sum, 0)) over w as csat_sum,
           sum(coalesce(r.csat_n, 0)) over w as csat_n
    from points p
    join median_hours m on m.account_id = p.account_id and m.day = p.day
    left join opened o on o.account_id = p.account_id and o.day = p.day
    left join resolved r on r.account_id = p.account_id and r.day = p.day
    window w as (partition by p.account_id order by p.day
                 rows between unbounded preceding and current row)
),
d as (
    select g.account_id, g.day, t.median_hours,
           coalesce(t.opened, 0) as opened, coalesce(t.sev1, 0) as sev1,
           coalesce(t.escalated, 0) as escalated, coalesce(t.resolved, 0) as resolved,
           coalesce(t.csat_sum, 0) as csat_sum, coalesce(t.csat_n, 0) as csat_n
    from grid g asof left join totals t on t.account_id = g.account_id and g.day >= t.day
)
select account_id, day,
    opened - lag(opened, 90, 0) over w as tickets_90d,
    sev1 - lag(sev1, 90, 0) over w as sev1_tickets_90d,
    escalated - lag(escalated, 90, 0) over w as escalations_90d,
    opened - resolved as open_tickets,
    median_hours as median_hours_to_resolve_90d,
    (csat_sum - lag(csat_sum, 90, 0) over w) / nullif(csat_n - lag(csat_n, 90, 0) over w, 0)
        as ticket_csat_90d,
    opened - lag(opened, 90, 0) over w > 0 as has_tickets_90d
from d
window w as (partition by account_id order by day)
