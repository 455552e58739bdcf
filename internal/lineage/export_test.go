package lineage

// SetMaxNodes lowers the node cap so a test can reach it.
func SetMaxNodes(s *Service, n int) { s.maxNodes = n }
