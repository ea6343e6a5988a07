with en as (
    select account_id, occurred_at::date as day,
           count(*) filter (where event_type = 'training_completed') as trainings,
           sum(users) filter (where event_type = 'training_completed') as trained,
           sum(users) filter (where event_type = 'user_certified') as certified
    from enablement group by all
),
d as (
    select g.account_id, g.day, g.seats, u.distinct_features_used, u.seats_used,
           coalesce(en.trainings, 0) as trainings, coalesce(en.trained, 0) as trained,
           coalesce(en.certified, 0) as certified
    from grid g
    left join usage u on u.account_id = g.account_id and u.date = g.day
    left join en on en.account_id = g.account_id and en.day = g.day
)
select account_id, day,
    avg(distinct_features_used) over w30 as distinct_features_30d,
    avg(distinct_features_used) over w30 / nullif(avg(distinct_features_used) over prior60, 0) - 1
        as distinct_features_trend_30d_vs_prior_60d,
    avg(seats_used) over w30 / nullif(seats, 0) as seats_assigned_share_30d,
    sum(trainings) over w90 as trainings_90d,
    sum(trained) over w365 as users_trained_365d,
    sum(certified) over w365 as certified_users_365d,
    datediff('day', max(case when trainings > 0 then day end) over wall, day)
        as days_since_last_training
from d
window w30 as (partition by account_id order by day rows between 29 preceding and current row),
       prior60 as (partition by account_id order by day rows between 89 preceding and 30 preceding),
       w90 as (partition by account_id order by day rows between 89 preceding and current row),
       w365 as (partition by account_id order by day rows between 364 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
