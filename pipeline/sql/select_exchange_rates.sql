-- One stored snapshot: every quote of one provider's rate set for one day.
SELECT quote, rate FROM exchange_rates WHERE provider = $1 AND base = $2 AND as_of = $3
