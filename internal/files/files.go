// Package files holds small file helpers shared by packages that read
// operator- or registry-supplied files.
package files

import (
	"fmt"
	"io"
	"os"
)

// ReadLimited reads the whole file at path, failing instead of reading on
// when it is larger than limit bytes (a mistaken path to a huge file must not
// exhaust memory).
func ReadLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
