-- Every feature of every view in one pass over the grid (`grid.sql`: one row per account and day
-- it was a customer, with its current contract). Dense, so `ROWS` frames are day windows.
--
-- 1. Sparse sources (enablement, engagement, tickets, surveys, invoices, plan changes) become
--    running totals on the few days something happened, per source; `sparse` carries them all
--    onto the union of those days (an as-of join per source on few rows).
-- 2. `d`: the grid, its usage row (left join) and the latest `sparse` row (one as-of join).
-- 3. One window pass over `d` (one sort): framed windows for the dense usage columns, and
--    last-N-days sums of sparse events as the running total minus the one N rows earlier (the
--    grid has exactly one row per account and day, so N rows back is N days back).
--
-- Events count on the day they became known (tickets resolved, surveys answered, invoices paid),
-- never earlier, and only on grid days (as with `ROWS` frames over the grid) – except the two
-- states, open tickets and overdue invoices, which count every ticket/invoice wherever it began.
-- The output has one column per catalog feature (`features/catalog.py`), cast by the caller.
with
-- adoption / enablement ------------------------------------------------------------------------
en as (
    select account_id, occurred_at::date as day,
           count(*) filter (where event_type = 'training_completed') as trainings,
           sum(users) filter (where event_type = 'training_completed') as trained,
           sum(users) filter (where event_type = 'user_certified') as certified
    from enablement group by all
),
en_totals as (
    select account_id, day,
           sum(coalesce(trainings, 0)) over w as trainings,
           sum(coalesce(trained, 0)) over w as trained,
           sum(coalesce(certified, 0)) over w as certified,
           max(case when trainings > 0 then day end) over w as last_training_day
    from (select * from en semi join grid g using (account_id, day))
    window w as (partition by account_id order by day
                 rows between unbounded preceding and current row)
),
-- engagement -----------------------------------------------------------------------------------
eng as (
    select account_id, occurred_at::date as day,
           count(*) filter (where event_type = 'email_sent') as sent,
           count(*) filter (where event_type = 'email_opened') as opened,
           count(*) filter (where event_type = 'email_clicked') as clicked,
           count(*) filter (where event_type = 'webinar_attended') as webinars,
           count(*) filter (where event_type = 'meeting') as meetings,
           count(*) filter (where event_type = 'business_review') as reviews,
           count(*) filter (where event_type = 'exec_sponsor_contact') as exec,
           count(*) filter (where event_type = 'champion_change') as champion
    from engagement group by all
),
eng_totals as (
    select account_id, day,
           sum(sent) over w as sent, sum(opened) over w as opened, sum(clicked) over w as clicked,
           sum(webinars) over w as webinars, sum(meetings) over w as meetings,
           sum(reviews) over w as reviews, sum(exec) over w as exec,
           sum(champion) over w as champion,
           max(case when reviews > 0 then day end) over w as last_review_day
    from (select * from eng e semi join grid g on g.account_id = e.account_id and g.day = e.day)
    window w as (partition by account_id order by day
                 rows between unbounded preceding and current row)
),
-- support: opened tickets count on their opening day; resolution time and ticket CSAT on the
-- day the ticket was resolved. Values change on a day a ticket was opened or resolved, or 90
-- days after a resolution (when it leaves the 90-day window of the median).
tk_opened as (
    select account_id, opened_at::date as day, count(*) as n,
           count(*) filter (where severity = 1) as sev1,
           count(*) filter (where escalated) as escalated
    from tickets semi join grid g on g.account_id = tickets.account_id and g.day = opened_at::date
    group by all
),
tk_resolved_tickets as (
    select account_id, resolved_at::date as day,
           epoch(resolved_at - opened_at) / 3600.0 as hours, csat
    from tickets semi join grid g on g.account_id = tickets.account_id and g.day = resolved_at::date
    where resolved_at is not null
),
tk_resolved as (
    select account_id, day, sum(csat) as csat_sum, count(csat) as csat_n
    from tk_resolved_tickets group by all
),
tk_points as (
    select account_id, day from tk_opened
    union select account_id, day from tk_resolved
    union select account_id, day + 90 from tk_resolved
),
-- The median needs every ticket, not daily sums: the 90-day RANGE frame of each change day.
tk_median as (
    select account_id, day,
           median(hours) over (partition by account_id order by day
                               range between interval 89 days preceding and current row) as hours
    from (
        select account_id, day, true as is_point, null::double as hours from tk_points
        union all
        select account_id, day, false, hours from tk_resolved_tickets
    )
    qualify is_point
),
tk_totals as (
    select p.account_id, p.day, m.hours as median_hours,
           sum(coalesce(o.n, 0)) over w as opened, sum(coalesce(o.sev1, 0)) over w as sev1,
           sum(coalesce(o.escalated, 0)) over w as escalated,
           sum(coalesce(r.csat_sum, 0)) over w as csat_sum,
           sum(coalesce(r.csat_n, 0)) over w as csat_n
    from tk_points p
    join tk_median m on m.account_id = p.account_id and m.day = p.day
    left join tk_opened o on o.account_id = p.account_id and o.day = p.day
    left join tk_resolved r on r.account_id = p.account_id and r.day = p.day
    window w as (partition by p.account_id order by p.day
                 rows between unbounded preceding and current row)
),
-- The open backlog counts every ticket opened and not yet resolved, wherever it was opened (one
-- opened before the account's first grid day is open on it): +1 on the opening day, -1 on the
-- resolution day, summed up to each day (never negative: a ticket is resolved after it opened).
tk_backlog as (
    select account_id, day,
           sum(n) over (partition by account_id order by day
                        rows between unbounded preceding and current row) as open_tickets
    from (
        select account_id, day, sum(n) as n from (
            select account_id, opened_at::date as day, 1 as n from tickets
            union all
            select account_id, resolved_at::date, -1 from tickets where resolved_at is not null
        ) group by all
    )
),
-- satisfaction: answers count on the day they were given, not the day the survey was sent ------
sv_nps as (
    select account_id, responded_at::date as day, responded_at, nps,
           nps - lag(nps) over (partition by account_id order by responded_at) as change
    from surveys where nps is not null and responded_at is not null
),
sv_nps_day as (
    select account_id, day, arg_max(nps, responded_at) as nps,
           arg_max(change, responded_at) as change
    from sv_nps group by all
),
sv_sent as (select account_id, sent_at::date as day, count(*) as n from surveys group by all),
sv_answered as (
    select account_id, responded_at::date as day, count(*) as n,
           sum(csat) as csat_sum, count(csat) as csat_n
    from surveys where responded_at is not null group by all
),
sv_points as (
    select * from (
        select account_id, day from sv_nps_day
        union select account_id, day from sv_sent
        union select account_id, day from sv_answered
    ) semi join grid g using (account_id, day)
),
sv_totals as (
    select p.account_id, p.day,
           last_value(n.nps ignore nulls) over w as nps,
           last_value(n.change ignore nulls) over w as change,
           last_value(case when n.nps is not null then p.day end ignore nulls) over w as nps_day,
           sum(coalesce(s.n, 0)) over w as sent, sum(coalesce(a.n, 0)) over w as answered,
           sum(coalesce(a.csat_sum, 0)) over w as csat_sum,
           sum(coalesce(a.csat_n, 0)) over w as csat_n
    from sv_points p
    left join sv_nps_day n on n.account_id = p.account_id and n.day = p.day
    left join sv_sent s on s.account_id = p.account_id and s.day = p.day
    left join sv_answered a on a.account_id = p.account_id and a.day = p.day
    window w as (partition by p.account_id order by p.day
                 rows between unbounded preceding and current row)
),
-- financial: an invoice is late once paid after its due date (known on the payment day) --------
fi_paid as (
    select account_id, paid_at as day, count(*) as n,
           count(*) filter (where paid_at > due_at) as late,
           sum(greatest(datediff('day', due_at, paid_at), 0)) as days_late
    from invoices where paid_at is not null group by all
),
fi_issued as (
    select account_id, issued_at as day, sum(failed_payments) as failed,
           arg_max(discount_pct, issued_at) as discount
    from invoices group by all
),
fi_changes as (
    select account_id, changed_at as day,
           count(*) filter (where change_type = 'price_increase') as price,
           count(*) filter (where change_type in ('downgrade', 'seats_removed')) as down
    from plan_changes group by all
),
fi_points as (
    select * from (
        select account_id, day from fi_paid
        union select account_id, day from fi_issued
        union select account_id, day from fi_changes
    ) semi join grid g using (account_id, day)
),
fi_totals as (
    select pt.account_id, pt.day,
           sum(coalesce(p.n, 0)) over w as paid, sum(coalesce(p.late, 0)) over w as late,
           sum(coalesce(p.days_late, 0)) over w as days_late,
           sum(coalesce(i.failed, 0)) over w as failed,
           last_value(i.discount ignore nulls) over w as discount,
           sum(coalesce(c.price, 0)) over w as price, sum(coalesce(c.down, 0)) over w as down
    from fi_points pt
    left join fi_paid p on p.account_id = pt.account_id and p.day = pt.day
    left join fi_issued i on i.account_id = pt.account_id and i.day = pt.day
    left join fi_changes c on c.account_id = pt.account_id and c.day = pt.day
    window w as (partition by pt.account_id order by pt.day
                 rows between unbounded preceding and current row)
),
-- Overdue invoices: +1 the day after due, -1 on the payment day (the same day when paid in time),
-- summed up to each day over every invoice, so the count is never negative.
fi_overdue as (
    select account_id, day,
           sum(n) over (partition by account_id order by day
                        rows between unbounded preceding and current row) as overdue
    from (
        select account_id, day, sum(n) as n from (
            select account_id, (due_at + 1)::date as day, 1 as n from invoices
            union all
            select account_id, greatest(due_at + 1, paid_at)::date, -1
            from invoices where paid_at is not null
        ) group by all
    )
),
-- every sparse running total on the union of the days any of them changes ----------------------
points as (
    select account_id, day from en_totals
    union select account_id, day from eng_totals
    union select account_id, day from tk_totals
    union select account_id, day from tk_backlog
    union select account_id, day from sv_totals
    union select account_id, day from fi_totals
    union select account_id, day from fi_overdue
),
sparse as (
    select p.account_id, p.day,
           a.trainings, a.trained, a.certified, a.last_training_day,
           e.sent as em_sent, e.opened as em_opened, e.clicked as em_clicked, e.webinars,
           e.meetings, e.reviews, e.exec, e.champion, e.last_review_day,
           t.median_hours, t.opened as tk_opened, t.sev1, t.escalated,
           t.csat_sum as tk_csat_sum, t.csat_n as tk_csat_n, b.open_tickets,
           s.nps, s.change as nps_change, s.nps_day, s.sent as sv_sent, s.answered as sv_answered,
           s.csat_sum as sv_csat_sum, s.csat_n as sv_csat_n,
           f.paid, f.late, f.days_late, f.failed, f.discount, f.price, f.down, o.overdue
    from points p
    asof left join en_totals a on a.account_id = p.account_id and p.day >= a.day
    asof left join eng_totals e on e.account_id = p.account_id and p.day >= e.day
    asof left join tk_totals t on t.account_id = p.account_id and p.day >= t.day
    asof left join tk_backlog b on b.account_id = p.account_id and p.day >= b.day
    asof left join sv_totals s on s.account_id = p.account_id and p.day >= s.day
    asof left join fi_totals f on f.account_id = p.account_id and p.day >= f.day
    asof left join fi_overdue o on o.account_id = p.account_id and p.day >= o.day
),
d as (
    select g.account_id, g.day, g.segment, g.created_day, g.end_date, g.term_months, g.arr,
           g.seats,
           u.active_users, u.logins, u.key_feature_events, u.distinct_features_used,
           u.seats_used,
           case when u.active_users is not null
                then datediff('day', DATE '2000-01-01', g.day) end as x,
           case when u.active_users is not null then g.seats end as seats_reported,
           case when u.seats_used is not null then g.seats end as seats_assigned_of,
           coalesce(s.trainings, 0) as trainings, coalesce(s.trained, 0) as trained,
           coalesce(s.certified, 0) as certified, s.last_training_day,
           coalesce(s.em_sent, 0) as em_sent, coalesce(s.em_opened, 0) as em_opened,
           coalesce(s.em_clicked, 0) as em_clicked, coalesce(s.webinars, 0) as webinars,
           coalesce(s.meetings, 0) as meetings, coalesce(s.reviews, 0) as reviews,
           coalesce(s.exec, 0) as exec, coalesce(s.champion, 0) as champion, s.last_review_day,
           s.median_hours, coalesce(s.tk_opened, 0) as tk_opened, coalesce(s.sev1, 0) as sev1,
           coalesce(s.escalated, 0) as escalated, coalesce(s.tk_csat_sum, 0) as tk_csat_sum,
           coalesce(s.tk_csat_n, 0) as tk_csat_n, coalesce(s.open_tickets, 0) as open_tickets,
           s.nps, s.nps_change, s.nps_day,
           coalesce(s.sv_sent, 0) as sv_sent, coalesce(s.sv_answered, 0) as sv_answered,
           coalesce(s.sv_csat_sum, 0) as sv_csat_sum, coalesce(s.sv_csat_n, 0) as sv_csat_n,
           s.discount, coalesce(s.paid, 0) as paid, coalesce(s.late, 0) as late,
           coalesce(s.days_late, 0) as days_late, coalesce(s.failed, 0) as failed,
           coalesce(s.overdue, 0) as overdue, coalesce(s.price, 0) as price,
           coalesce(s.down, 0) as down
    from grid g
    left join usage u on u.account_id = g.account_id and u.date = g.day
    asof left join sparse s on s.account_id = g.account_id and g.day >= s.day
)
select account_id, day,
    -- usage. active_users_slope_90d is the least-squares slope (regr_slope) written out from
    -- window sums: (n·Σxy − Σx·Σy) / (n·Σx² − (Σx)²) over the days with data, x = day number.
    -- Integer sums keep it exact; fewer than 2 days gives a zero denominator, so NULL.
    avg(active_users) over w7 as active_users_7d,
    avg(active_users) over w30 as active_users_30d,
    avg(active_users) over w90 as active_users_90d,
    -- Seat shares: active (assigned) seat-days over licensed seat-days of the days with usage
    -- data, so each day counts against its own seats (a seat reduction must not rescale older
    -- days above 1). Integer sums: exact, whatever the chunking or thread count.
    sum(active_users) over w30 / nullif(sum(seats_reported) over w30, 0) as seat_utilisation_30d,
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
                 - sum(x) over w90 * sum(x) over w90, 0) as active_users_slope_90d,
    -- adoption
    avg(distinct_features_used) over w30 as distinct_features_30d,
    avg(distinct_features_used) over w30 / nullif(avg(distinct_features_used) over prior60, 0) - 1
        as distinct_features_trend_30d_vs_prior_60d,
    sum(seats_used) over w30 / nullif(sum(seats_assigned_of) over w30, 0)
        as seats_assigned_share_30d,
    trainings - lag(trainings, 90, 0) over w as trainings_90d,
    trained - lag(trained, 365, 0) over w as users_trained_365d,
    certified - lag(certified, 365, 0) over w as certified_users_365d,
    datediff('day', last_training_day, day) as days_since_last_training,
    -- engagement. Opens are events of their own, not linked to a sent email: an open inside the
    -- window can belong to an email sent before it, so the ratio of the counts is capped at 1.
    em_sent - lag(em_sent, 90, 0) over w as emails_sent_90d,
    least((em_opened - lag(em_opened, 90, 0) over w)
          / nullif(em_sent - lag(em_sent, 90, 0) over w, 0), 1.0) as email_open_rate_90d,
    em_clicked - lag(em_clicked, 90, 0) over w as email_clicks_90d,
    webinars - lag(webinars, 90, 0) over w as webinars_90d,
    meetings - lag(meetings, 90, 0) over w as meetings_90d,
    reviews - lag(reviews, 365, 0) over w as business_reviews_365d,
    datediff('day', last_review_day, day) as days_since_last_business_review,
    exec - lag(exec, 180, 0) over w as exec_sponsor_contacts_180d,
    champion - lag(champion, 365, 0) over w as champion_changes_365d,
    -- support
    tk_opened - lag(tk_opened, 90, 0) over w as tickets_90d,
    sev1 - lag(sev1, 90, 0) over w as sev1_tickets_90d,
    escalated - lag(escalated, 90, 0) over w as escalations_90d,
    open_tickets,
    median_hours as median_hours_to_resolve_90d,
    (tk_csat_sum - lag(tk_csat_sum, 90, 0) over w)
        / nullif(tk_csat_n - lag(tk_csat_n, 90, 0) over w, 0) as ticket_csat_90d,
    tk_opened - lag(tk_opened, 90, 0) over w > 0 as has_tickets_90d,
    -- satisfaction (surveys answered inside the window may have been sent before it: capped)
    nps as nps_latest,
    nps_change,
    datediff('day', nps_day, day) as days_since_last_nps,
    (sv_csat_sum - lag(sv_csat_sum, 180, 0) over w)
        / nullif(sv_csat_n - lag(sv_csat_n, 180, 0) over w, 0) as csat_180d,
    least((sv_answered - lag(sv_answered, 365, 0) over w)
          / nullif(sv_sent - lag(sv_sent, 365, 0) over w, 0), 1.0) as survey_response_rate_365d,
    nps is not null as has_nps_response,
    -- financial
    arr,
    arr / nullif(lag(arr, 365) over w, 0) - 1 as arr_change_365d,
    (days_late - lag(days_late, 180, 0) over w) / nullif(paid - lag(paid, 180, 0) over w, 0)
        as mean_days_late_180d,
    late - lag(late, 180, 0) over w as late_invoices_180d,
    overdue as overdue_unpaid_invoices,
    discount as discount_pct,
    failed - lag(failed, 180, 0) over w as failed_payments_180d,
    price - lag(price, 365, 0) over w as price_increases_365d,
    down - lag(down, 365, 0) over w as downgrades_365d,
    -- contract
    segment,
    datediff('day', created_day, day) as tenure_days,
    term_months,
    datediff('day', day, end_date) as days_to_renewal,
    seats
from d
window w as (partition by account_id order by day),
       w7 as (partition by account_id order by day rows between 6 preceding and current row),
       w30 as (partition by account_id order by day rows between 29 preceding and current row),
       w90 as (partition by account_id order by day rows between 89 preceding and current row),
       prior60 as (partition by account_id order by day rows between 89 preceding and 30 preceding),
       wall as (partition by account_id order by day
                rows between unbounded preceding and current row)
