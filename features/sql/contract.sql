select account_id, day,
    segment,
    datediff('day', created_day, day) as tenure_days,
    term_months,
    datediff('day', day, end_date) as days_to_renewal,
    seats
from grid
