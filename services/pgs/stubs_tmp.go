package pgs

import "github.com/portico-sh/portico/services"

func (s *Service) serveSCP(sess *services.Session) int { return 1 }
