// Package pgs is the pgs service: static sites deployed over SSH with rsync, scp and sftp
// (atomic deploys of content-addressed files, rollback, links), its commands, and the HTTP
// serving of each project's live deploy.
// It reads the Grant the gateway made and never re-decides access; every path a client sends
// goes through package sitepath and stays inside the caller's own account.
package pgs
