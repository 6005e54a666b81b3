// Package migrations holds portico's goose SQL migrations, one directory per dialect (sqlite/,
// postgres/) with the same numbered steps, embedded so the binary migrates itself.
// It holds schema only: no queries, no data, and no Go code that touches a database.
package migrations
