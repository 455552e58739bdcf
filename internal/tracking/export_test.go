package tracking

// SetTiers makes s split searches ordered by a metric into tiers, or not,
// whatever the dialect, so tests can compare the two on both.
func SetTiers(s *Service, on bool) { s.tiers = on }
