// Package rsync is an rsync protocol-27 server (receiver for uploads, sender for downloads) over any stream and FS.
// It must not read, write or delete outside the FS it is given, make a file visible before its checksum verified, or trust peer-sent sizes.
//
// # Options
//
// Serve parses the command line the client sends (`rsync --server ...`) with shell rules. The
// server speaks protocol 27 whatever the client offers (3.x clients accept it).
//
// Supported: -v, -r, -d, -l (symlinks are listed when sending; when receiving they are skipped
// with a warning, as are devices and specials), -o, -g (owners travel in the file list but are
// not stored when receiving), -D, -t, -p, -c, -n, -z (--compress-level, which implies -z unless
// 0, --compress-choice=zlib), -I, -W, -u, -O, -J, -x, -e (capability string, ignored), -s
// (protect-args: the rest of the arguments arrive on stdin), --size-only, --checksum-seed,
// --modify-window (-@), --force, --existing, --ignore-existing, --numeric-ids, --ignore-errors,
// --max-delete, --mkpath, --list-only (downloads only), --delete, --del, --delete-before,
// --delete-during, --delete-delay, --delete-after, --delete-excluded, --checksum-choice=md4
// (uploads only: it makes the client's whole-file checksum unseeded).
//
// Accepted and ignored: -q, -L, -k, -S, -E, --log-format, --out-format, --stats, --partial,
// --timeout, --contimeout, --info, --debug, --[no-]msgs2stderr, --[no-]specials (--no-specials
// is honoured in the file list), --no-W, --bwlimit, --block-size (-B), --protocol, --no-i-r,
// --safe-links, --preallocate, --ignore-missing-args, --fsync, --open-noatime,
// --copy-unsafe-links, --max-alloc, --skip-compress (-z compresses every file).
//
// Refused with a message on stderr and exit status 4 before anything is written: -b, -H, -A,
// -X, -U, -N, -R, -K, -m, -y, -C, --inplace, --append, --append-verify, --backup-dir,
// --suffix, --temp-dir, -T, --partial-dir, --delay-updates, --files-from, --from0, --iconv,
// --remove-source-files, --compare-dest, --copy-dest, --link-dest, --chmod, --chown,
// --usermap, --groupmap, --min-size, --max-size, --delete-missing-args, --write-devices,
// --fake-super, --copy-devices, --super, --only-write-batch, --read-batch, other
// --compress-choice and --checksum-choice values. Unknown
// options are refused with exit status 1.
//
// # Receiving
//
// An FS that implements ReceiveStarter learns the destination before the transfer starts, and
// may refuse it (pgs takes the project's deploy lock there). Files arrive in a temporary upload
// (FS.Create) that becomes visible only when the whole-file MD4 matched. Received files always keep the client's modification time, also without -t, so
// that an unchanged re-upload with plain -r is skipped by the quick check; -p applies the
// client's permissions (directories keep the owner's rwx, so the server never locks itself
// out), otherwise new files get them masked with 022 and existing files keep
// theirs. Missing parents of the destination are created (as with --mkpath). An FS that also
// implements ChecksumFS answers -c without reading the stored files.
//
// # Limits
//
// A client may send at most 1,048,576 file-list entries with 64 MiB of names, names of up to
// 4,095 bytes and 128 directories (the destination too), 4,096 filter rules with 1 MiB of
// text, and 64 KiB of -s arguments; more ends the session with a protocol error. DirFS
// reserves names that start with "." and end in ".rsync-tmp" for its temporary files.
//
// # Sending
//
// With --sender (a download) the server reads the client's filter rules and lists each source
// argument as rsync does: `dir/` sends dir's contents under "." (the top directory), `dir` sends
// "dir" and everything below it, a file is sent under its base name; excluded names are left out
// (an excluded directory with all it holds). Directories need -r, or -d (what a listing without
// a destination sends): the directory alone, or with "dir/" its entries but nothing below them.
// Symbolic links need -l, devices and specials -D; what is skipped is reported to the client. Requested files are sent as a delta
// against the client's block checksums (-z: the protocol-27 zlib token format). Names are never
// mapped in the uid/gid lists, so -o/-g keep numeric ids. A source that cannot be read, or a
// source argument with "..", is reported per file and ends the run with status 23 (partial).
package rsync
