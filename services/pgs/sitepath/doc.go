// Package sitepath is the one place that checks the paths pgs users send, for rsync, scp, sftp
// and HTTP alike: a project name (a DNS label) and the path of a file below it.
// It only parses and checks; it never touches storage and never cleans ".." away.
package sitepath
