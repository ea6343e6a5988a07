-- Event sums are running totals taken on the (few) days something happened and carried to every
-- grid day by an as-of join; a window over the last N days is then the running total minus the
-- one N rows earlier (the grid has exactly one row per account and day). Only events on grid
-- days count, as with ROWS frames over the grid. Same values, a fraction of the framed sums' cost.
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
totals as (
    select account_id, day,
           sum(sent) over w as sent, sum(opened) over w as opened, sum(clicked) over w as clicked,
           sum(webinars) over w as webinars, sum(meetings) over w as meetings,
           sum(reviews) over w as reviews, sum(exec) over w as exec,
           sum(champion) over w as champion,
           max(case when reviews > 0 then day end) over w as last_review_day
    from (select * from e semi join grid g on g.account_id = e.account_id and g.day = e.day)
    window w as (partition by account_id order by day
                 rows between unbounded preceding and current row)
),
d as (
    select g.account_id, g.day,
           coalesce(t.sent, 0) as sent, coalesce(t.opened, 0) as opened,
           coalesce(t.clicked, 0) as clicked, coalesce(t.webinars, 0) as webinars,
           coalesce(t.meetings, 0) as meetings, coalesce(t.reviews, 0) as reviews,
           coalesce(t.exec, 0) as exec, coalesce(t.champion, 0) as champion, t.last_review_day
    from grid g asof left join totals t on t.account_id = g.account_id and g.day >= t.day
)
select account_id, day,
    sent - lag(sent, 90, 0) over w as emails_sent_90d,
    (opened - lag(opened, 90, 0) over w) / nullif(sent - lag(sent, 90, 0) over w, 0)
        as email_open_rate_90d,
    clicked - lag(clicked, 90, 0) over w as email_clicks_90d,
    webinars - lag(webinars, 90, 0) over w as webinars_90d,
    meetings - lag(meetings, 90, 0) over w as meetings_90d,
    reviews - lag(reviews, 365, 0) over w as business_reviews_365d,
    datediff('day', last_review_day, day) as days_since_last_business_review,
    exec - lag(exec, 180, 0) over w as exec_sponsor_contacts_180d,
    champion - lag(champion, 365, 0) over w as champion_changes_365d
from d
window w as (partition by account_id order by day)
