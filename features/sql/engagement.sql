with e as (
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
d as (
    select g.account_id, g.day,
           coalesce(e.sent, 0) as sent, coalesce(e.opened, 0) as opened,
           coalesce(e.clicked, 0) as clicked, coalesce(e.webinars, 0) as webinars,
           coalesce(e.meetings, 0) as meetings, coalesce(e.reviews, 0) as reviews,
           coalesce(e.exec, 0) as exec, coalesce(e.champion, 0) as champion
    from grid g left join e on e.account_id = g.account_id and e.day = g.day
)
select account_id, day,
    sum(sent) over w90 as emails_sent_90d,
    sum(opened) over w90 / nullif(sum(sent) over w90, 0) as email_open_rate_90d,
    sum(clicked) over w90 as email_clicks_90d,
    sum(webinars) over w90 as webinars_90d,
    sum(meetings) over w90 as meetings_90d,
    sum(reviews) over w365 as business_reviews_365d,
    datediff('day', max(case when reviews > 0 then day end) over wall, day)
        as days_since_last_business_review,
    sum(exec) over w180 as exec_sponsor_contacts_180d,
    sum(champion) over w365 as champion_changes_365d
from d
window w90 as (partition by account_id order by day rows between 89 preceding and current row),
       w180 as (partition by account_id order by day rows between 179 preceding and current row),
       w365 as (partition by account_id order by day rows between 364 preceding and current row),
       wall as (partition by account_id order by day rows between unbounded preceding and current row)
