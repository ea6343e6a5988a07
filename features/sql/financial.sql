-- An invoice is late once paid after its due date (known on the payment day) and overdue while
-- unpaid after its due date: counted from the day after due until the payment day.
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
d as (
    select g.account_id, g.day, g.arr,
           coalesce(p.n, 0) as paid, coalesce(p.late, 0) as late,
           coalesce(p.days_late, 0) as days_late, coalesce(i.failed, 0) as failed, i.discount,
           coalesce(f.n, 0) as overdue_from, coalesce(u.n, 0) as overdue_until,
           coalesce(c.price, 0) as price, coalesce(c.down, 0) as down
    from grid g
    left join paid p on p.account_id = g.account_id and p.day = g.day
    left join issued i on i.account_id = g.account_id and i.day = g.day
    left join overdue_from f on f.account_id = g.account_id and f.day = g.day
    left join overdue_until u on u.account_id = g.account_id and u.day = g.day
    left join changes c on c.account_id = g.account_id and c.day = g.day
)
select account_id, day,
    arr,
    arr / nullif(lag(arr, 365) over (partition by account_id order by day), 0) - 1
        as arr_change_365d,
    sum(days_late) over w180 / nullif(sum(paid) over w180, 0) as mean_days_late_180d,
    sum(late) over w180 as late_invoices_180d,
    sum(overdue_from) over wall - sum(overdue_until) over wall as overdue_unpaid_invoices,
    last_value(discount ignore nulls) over wall as discount_pct,
    sum(failed) over w180 as failed_payments_180d,
    sum(price) over w365 as price_increases_365d,
    sum(down) over w365 as downgrades_365d
from d
window w180 as (partition by account_id order by day rows between 179 preceding and current row),
       w365 as (partition by account_id order by day rows between 364 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
