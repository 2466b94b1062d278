package codec

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LoadKeyFile reads the keys of JOINERY_CODEC_KEYS_FILE: one
// "<key-id> <base64 of 32 bytes>" per line, newest (encrypting) key first;
// blank lines and lines starting with # are ignored. The file must not be
// readable or writable by group or others (mode 0600 or 0400): whoever can
// read it can read every joiner's personal data.
func LoadKeyFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("codec keys: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("codec keys: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("codec keys %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("codec keys %s: mode %04o lets group or others read it; want 0600 (chmod 600 %s)", path, perm, path)
	}
	keys, err := ParseKeys(f)
	if err != nil {
		return nil, fmt.Errorf("codec keys %s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys parses the key file format (see LoadKeyFile). It refuses an
// empty list, duplicate IDs and keys that are not exactly 32 bytes.
func ParseKeys(r io.Reader) ([]Key, error) {
	var keys []Key
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			// Never echo the line: it may hold key material.
			return nil, fmt.Errorf("line %d: want \"<key-id> <base64 key>\", got %d fields", n, len(fields))
		}
		id := fields[0]
		if err := ValidKeyID(id); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: key ID %q already on line %d", n, id, first)
		}
		seen[id] = n
		secret, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: key %q is not standard base64", n, id)
		}
		if len(secret) != KeySize {
			return nil, fmt.Errorf("line %d: key %q is %d bytes, want %d (AES-256)", n, id, len(secret), KeySize)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// NewKey generates a random AES-256 key. An empty id becomes one from the
// current date and random bits, so rotated keys sort and never collide.
func NewKey(id string) (Key, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, err
	}
	if id == "" {
		suffix := make([]byte, 3)
		if _, err := rand.Read(suffix); err != nil {
			return Key{}, err
		}
		id = fmt.Sprintf("k%s-%x", time.Now().UTC().Format("20060102"), suffix)
	}
	if err := ValidKeyID(id); err != nil {
		return Key{}, err
	}
	return Key{ID: id, Secret: secret}, nil
}

// Line formats a key as one line of the key file.
func (k Key) Line() string {
	return k.ID + " " + base64.StdEncoding.EncodeToString(k.Secret)
}

// EnsureKeyFile creates path with one new key (mode 0600, directory 0700)
// when it does not exist, and reports whether it did. An existing file is
// left alone: replacing it would make every sealed history unreadable.
func EnsureKeyFile(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	k, err := NewKey("")
	if err != nil {
		return false, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Joinery payload codec keys: newest (encrypting) first; keep old lines while histories need them.\n%s\n", k.Line())
	// Write a complete temporary file, then link it into place: link fails
	// if the file appeared meanwhile, so two stacks starting at once never
	// each write a different key, and no reader ever sees a half-written one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".codec-keys-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Load builds a codec from a key file.
func Load(path string) (*Codec, error) {
	keys, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	return New(keys)
}
