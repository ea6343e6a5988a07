-- An invoice is late once paid after its due date (known on the payment day) and overdue while
-- unpaid after its due date: counted from the day after due until the payment day. Only events
-- on grid days count.
--
-- Event sums are running totals taken on the days something happened and carried to every grid
-- day by an as-of join; a window over the last N days is the running total minus the one N rows
-- earlier (the grid has exactly one row per account and day).
with paid as (
    select account_id, paid_at as day, count(*) as n,
           count(*) filter (where paid_at > due_at) as late,
           sum(greatest(datediff('day', due_at, paid_at), 0)) as days_late
    from invoices where paid_at is not null group by all
),
issued as (
    select account_id, issued_at as day, sum(failed_payments) as failed,
           arg_max(discount_pct, issued_at) as discount
    from invoices group by all
),
overdue_from as (
    select account_id, (due_at + 1)::date as day, count(*) as n from invoices group by all
),
overdue_until as (
    select account_id, greatest(due_at + 1, paid_at)::date as day, count(*) as n
    from invoices where paid_at is not null group by all
),
changes as (
    select account_id, changed_at as day,
           count(*) filter (where change_type = 'price_increase') as price,
           count(*) filter (where change_type in ('downgrade', 'seats_removed')) as down
    from plan_changes group by all
),
points as (
    select * from (
        select account_id, day from paid
        union select account_id, day from issued
        union select account_id, day from overdue_from
        union select account_id, day from overdue_until
        union select account_id, day from changes
    ) semi join grid g using (account_id, day)
),
totals as (
    select pt.account_id, pt.day,
           sum(coalesce(p.n, 0)) over w as paid, sum(coalesce(p.late, 0)) over w as late,
           sum(coalesce(p.days_late, 0)) over w as days_late,
           sum(coalesce(i.failed, 0)) over w as failed,
           last_value(i.discount ignore nulls) over w as discount,
           sum(coalesce(f.n, 0)) over w - sum(coalesce(u.n, 0)) over w as overdue,
           sum(coalesce(c.price, 0)) over w as price, sum(coalesce(c.down, 0)) over w as down
    from points pt
    left join paid p on p.account_id = pt.account_id and p.day = pt.day
    left join issued i on i.account_id = pt.account_id and i.day = pt.day
    left join overdue_from f on f.account_id = pt.account_id and f.day = pt.day
    left join overdue_until u on u.account_id = pt.account_id and u.day = pt.day
    left join changes c on c.account_id = pt.account_id and c.day = pt.day
    window w as (partition by pt.account_id order by pt.day
                 rows between unbounded preceding and current row)
),
d as (
    select g.account_id, g.day, g.arr, t.discount,
           coalesce(t.paid, 0) as paid, coalesce(t.late, 0) as late,
           coalesce(t.days_late, 0) as days_late, coalesce(t.failed, 0) as failed,
           coalesce(t.overdue, 0) as overdue, coalesce(t.price, 0) as price,
           coalesce(t.down, 0) as down
    from grid g asof left join totals t on t.account_id = g.account_id and g.day >= t.day
)
select account_id, day,
    arr,
    arr / nullif(lag(arr, 365) over w, 0) - 1 as arr_change_365d,
    (days_late - lag(days_late, 180, 0) over w) / nullif(paid - lag(paid, 180, 0) over w, 0)
        as mean_days_late_180d,
    late - lag(late, 180, 0) over w as late_invoices_180d,
    overdue as overdue_unpaid_invoices,
    discount as discount_pct,
    failed - lag(failed, 180, 0) over w as failed_payments_180d,
    price - lag(price, 365, 0) over w as price_increases_365d,
    down - lag(down, 365, 0) over w as downgrades_365d
from d
window w as (partition by account_id order by day)
