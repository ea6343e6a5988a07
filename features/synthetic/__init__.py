"""A realistic synthetic book of business in the data contract's shape (`healthscore generate`)."""
