// Package rsync is an rsync server for protocols 27–32 (receiver for uploads, sender for downloads) over any stream and FS.
// It must not read, write or delete outside the FS it is given, make a file visible before its checksum verified, or trust peer-sent sizes.
//
// # Protocol
//
// Both sides send their version; the session speaks the lower, at most 32 and at least 27
// (older clients are refused with exit status 2). What changes with the version:
//
//   - 28: file-list flags may take a second byte; device numbers travel as major and minor.
//   - 29: the file list sorts as rsync's f_name_cmp does (in each directory its files before its
//     subdirectories, directories compared with a trailing "/"); every file index is followed
//     by item flags; a third (delay-updates) phase; filter rules in the modern syntax ("+"/"-"
//     with modifiers: "s" sender-only, "r" receiver-only, "!" negated, "/" anchored, "p"
//     perishable); --delete-excluded still sends the rules.
//   - 30: the client's output is multiplexed too: the messages rsync's own server accepts
//     from a client are taken (I/O error, no-op, no-send, success, deleted, error exit, and
//     text, which is dropped); any other tag, or one of the wrong length, ends the session with
//     status 12; integers in the file list, id lists and statistics are varints; file indexes
//     are sent as differences; the server sends compatibility flags (a varint): safe file list,
//     avoid-xattr-optimisation, checksum-seed fix, inplace-partial-dir, id-0 names and varint
//     flags, each only when the client's capability string (-e.XXX) names it. Incremental
//     recursion (CF_INC_RECURSE) is never offered: the client sends its whole list first, as
//     with --no-inc-recursive, and needs no message about it. Symbolic-link times and iconv are
//     not offered either. With the varint flag the checksum and compression choices are
//     negotiated: each side sends its list; the server's are "xxh128 xxh3 xxh64 md5 md4" and
//     "zstd lz4 zlibx zlib none", and it takes the first name of the client's list it has (what
//     the client takes from the server's list). --checksum-choice=X[,Y] and --compress-choice
//     (and --old-compress, --new-compress) skip the negotiation at any protocol; "sha1" and
//     "none" checksums are refused. Without negotiation: MD4 (seeded) below 30, MD5 from 30 on,
//     zlib with -z.
//   - 31: modification times carry nanoseconds; deletion statistics and an extended goodbye
//     end the run (the server waits at most 10 seconds for the client's last words once it has
//     sent everything: an upload then ends with its status, a download with status 12); long matched blocks feed the zlib history without repeating themselves.
//
// Checksums: block checksums are seeded (xxh* with the seed as their 64-bit seed, MD5 with the
// seed first, MD4 with it last); the whole-file checksum after each file is seeded only for the
// protocol-27–29 default MD4, and -c compares the unseeded (or seed-0) digest of the file
// checksum choice. Compression: zlib as at 27; zlibx without the matched-block history; zstd one
// stream for the whole session, flushed before every token (github.com/klauspost/compress;
// windows up to 8 MiB are accepted, enough for levels up to 19); lz4 one block per data frame
// (github.com/pierrec/lz4/v4). The checksum seed is --checksum-seed, else random and never 0.
//
// # Options
//
// Serve parses the command line the client sends (`rsync --server ...`) with shell rules.
//
// Supported: -v, -r, -d, -l (symlinks are listed when sending; when receiving they are skipped
// with a warning, as are devices and specials), -o, -g (owners travel in the file list but are
// not stored when receiving), -D, -t, -p, -c, -n, -z (--compress-level: 0 turns zlib and zlibx off,
// another level implies -z; --compress-choice, --old-compress, --new-compress), -I, -W, -u, -O, -J, -x, -e (capability string, ignored), -s
// (protect-args: the rest of the arguments arrive on stdin), --size-only, --checksum-seed,
// --modify-window (-@), --force, --existing, --ignore-existing, --numeric-ids, --ignore-errors,
// --max-delete, --mkpath, --list-only (downloads only), --delete, --del, --delete-before,
// --delete-during, --delete-delay, --delete-after, --delete-excluded, --checksum-choice (cc).
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
// --fake-super, --copy-devices, --super, --only-write-batch, --read-batch, --compress-choice
// and --checksum-choice values other than those above; per-directory merge (":") and CVS
// filter rules. Unknown
// options are refused with exit status 1.
//
// # Receiving
//
// An FS that implements ReceiveStarter learns the destination before the transfer starts, and
// may refuse it (pgs takes the project's deploy lock there). Files arrive in a temporary upload
// (FS.Create) that becomes visible only when the whole-file checksum matched. Received files always keep the client's modification time, also without -t, so
// that an unchanged re-upload with plain -r is skipped by the quick check; -p applies the
// client's permissions (directories keep the owner's rwx, so the server never locks itself
// out), otherwise new files get them masked with 022 and existing files keep
// theirs. Missing parents of the destination are created (as with --mkpath). An FS that also
// implements ChecksumFS answers -c without reading the stored files when the file checksum is
// MD4 (protocol 27–29, or --checksum-choice=md4).
//
// The quick check (skip a file whose size and modification time match) compares nanoseconds
// when it can: at protocol 31 and later, without --modify-window or with a negative one, and
// when both the stored time and the client's have a sub-second part. So a same-size edit made
// within the same second as the stored version is transferred. When either side has whole
// seconds only (a time stored by an FS that keeps none, an older client, a file system without
// sub-second times) the check compares whole seconds, so an unchanged file is still skipped.
// This is stricter than rsync's own default, which compares whole seconds unless given
// --modify-window=-1; because this server keeps the client's time even without -t, a
// same-second edit would otherwise stay unsent. --modify-window=0, given explicitly, compares
// whole seconds as rsync does; --modify-window=N treats times up to N seconds apart as equal.
// -u skips a file whose stored time is newer by the same comparison. A kept file gets the
// client's full time only when the times differ at the precision compared.
//
// # Limits
//
// A client may send at most 1,048,576 file-list entries with 64 MiB of names, names of up to
// 4,095 bytes and 128 directories (the destination too), 4,096 filter rules with 1 MiB of
// text, 64 KiB of -s arguments, negotiation lists of 1,024 bytes, text messages of 5,119 bytes in
// its multiplexed stream (as rsync's buffer) and zstd windows of 8 MiB; more ends the session with a protocol error. An FS that implements ListLimiter lowers the
// entry bound (pgs: twice PORTICO_PGS_MAX_FILES, plus 1,024). The data of a file that cannot be
// written is read and dropped up to 64 MiB in a session; past that the session ends. DirFS
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
// against the client's block checksums (-z: the negotiated token format). Names are never
// mapped in the uid/gid lists, so -o/-g keep numeric ids. A source that cannot be read, or a
// source argument with "..", is reported per file and ends the run with status 23 (partial).
package rsync
