// Package siterules parses a site's _redirects and _headers files (Netlify's syntax, which
// Cloudflare Pages and pico read too) and matches request paths against them.
// It only parses and matches: it never reads storage and never serves a request.
package siterules
