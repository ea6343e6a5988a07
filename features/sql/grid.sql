-- One row per account and day it was a customer, within the data window, with its current
-- contract (as-of join on the contract start). Everything else is computed over this dense grid,
-- so ROWS window frames are day windows.
with life as (
    select account_id,
           min(start_date) as first_day,
           max(case when outcome = 'churned' then end_date end) as churn_day
    from contracts group by account_id
),
days as (
    select l.account_id,
           unnest(generate_series(greatest(l.first_day, $data_start),
                                  least(coalesce(l.churn_day, $as_of), $as_of),
                                  interval 1 day))::date as day
    from life l
    where greatest(l.first_day, $data_start) <= least(coalesce(l.churn_day, $as_of), $as_of)
)
select d.account_id, d.day, a.segment, a.created_at::date as created_day,
       c.start_date, c.end_date, c.term_months, c.arr, c.seats
from days d
join accounts a on a.account_id = d.account_id
asof left join contracts c on c.account_id = d.account_id and d.day >= c.start_date
