-- Usage columns are dense (framed windows over the grid). Enablement events are sparse: running
-- totals taken on the days something happened (on grid days) and carried to every grid day by an
-- as-of join; a window over the last N days is the running total minus the one N rows earlier
-- (the grid has exactly one row per account and day).
with en as (
    select account_id, occurred_at::date as day,
           count(*) filter (where event_type = 'training_completed') as trainings,
           sum(users) filter (where event_type = 'training_completed') as trained,
           sum(users) filter (where event_type = 'user_certified') as certified
    from enablement group by all
),
totals as (
    select account_id, day,
           sum(coalesce(trainings, 0)) over w as trainings,
           sum(coalesce(trained, 0)) over w as trained,
           sum(coalesce(certified, 0)) over w as certified,
           max(case when trainings > 0 then day end) over w as last_training_day
    from (select * from en semi join grid g using (account_id, day))
    window w as (partition by account_id order by day
                 rows between unbounded preceding and current row)
),
d as (
    select g.account_id, g.day, g.seats, u.distinct_features_used, u.seats_used,
           coalesce(t.trainings, 0) as trainings, coalesce(t.trained, 0) as trained,
           coalesce(t.certified, 0) as certified, t.last_training_day
    from grid g
    left join usage u on u.account_id = g.account_id and u.date = g.day
    asof left join totals t on t.account_id = g.account_id and g.day >= t.day
)
select account_id, day,
    avg(distinct_features_used) over w30 as distinct_features_30d,
    avg(distinct_features_used) over w30 / nullif(avg(distinct_features_used) over prior60, 0) - 1
        as distinct_features_trend_30d_vs_prior_60d,
    avg(seats_used) over w30 / nullif(seats, 0) as seats_assigned_share_30d,
    trainings - lag(trainings, 90, 0) over w as trainings_90d,
    trained - lag(trained, 365, 0) over w as users_trained_365d,
    certified - lag(certified, 365, 0) over w as certified_users_365d,
    datediff('day', last_training_day, day) as days_since_last_training
from d
window w as (partition by account_id order by day),
       w30 as (partition by account_id order by day rows between 29 preceding and current row),
       prior60 as (partition by account_id order by day rows between 89 preceding and 30 preceding)
