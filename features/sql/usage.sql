-- active_users_slope_90d is the least-squares slope (regr_slope) written out from window sums:
-- (n·Σxy − Σx·Σy) / (n·Σx² − (Σx)²) over the days with data, x = day number. Integer sums keep
-- it exact; fewer than 2 days gives a zero denominator, so NULL.
with d as (
    select g.account_id, g.day, g.seats, u.active_users, u.logins, u.key_feature_events,
           case when u.active_users is not null
                then datediff('day', DATE '2000-01-01', g.day) end as x
    from grid g
    left join usage u on u.account_id = g.account_id and u.date = g.day
)
select account_id, day,
    avg(active_users) over w7 as active_users_7d,
    avg(active_users) over w30 as active_users_30d,
    avg(active_users) over w90 as active_users_90d,
    avg(active_users) over w30 / nullif(seats, 0) as seat_utilisation_30d,
    sum(logins) over w30 as logins_30d,
    sum(key_feature_events) over w30 as key_feature_events_30d,
    sum(key_feature_events) over w30 / nullif(sum(active_users) over w30, 0)
        as key_events_per_active_user_30d,
    datediff('day', max(case when logins > 0 then day end) over wall, day)
        as days_since_last_login,
    avg(active_users) over w30 / nullif(avg(active_users) over prior60, 0) - 1
        as active_users_trend_30d_vs_prior_60d,
    count(active_users) over w30 as usage_days_reported_30d,
    (count(active_users) over w90 * sum(x * active_users) over w90
        - sum(x) over w90 * sum(active_users) over w90)::double
        / nullif(count(active_users) over w90 * sum(x * x) over w90
                 - sum(x) over w90 * sum(x) over w90, 0) as active_users_slope_90d
from d
window w7 as (partition by account_id order by day rows between 6 preceding and current row),
       w30 as (partition by account_id order by day rows between 29 preceding and current row),
       w90 as (partition by account_id order by day rows between 89 preceding and current row),
       prior60 as (partition by account_id order by day rows between 89 preceding and 30 preceding),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
