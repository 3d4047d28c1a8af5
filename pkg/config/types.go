package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a string with a unit: Go's units
// ("90s", "4h", "1h30m") plus "d" (24h) and "w" (7d), e.g. "5d" or "1w2d".
type Duration time.Duration

// ParseDuration parses the duration syntax of the configuration file.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad duration %q (want e.g. \"90s\", \"4h\", \"5d\")", orig)
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		num, unit := s[:i], s[i:j]
		s = s[j:]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		case "ns", "us", "µs", "ms", "s", "m", "h":
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("bad duration %q", orig)
			}
			total += d
			continue
		default:
			return 0, fmt.Errorf("bad duration %q: unit %q is not one of ms, s, m, h, d, w", orig, unit)
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", orig)
		}
		total += time.Duration(f * float64(mult))
	}
	if total < 0 {
		return 0, fmt.Errorf("negative duration %q", orig)
	}
	return total, nil
}

// UnmarshalText implements encoding.TextUnmarshaler for the TOML decoder.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in Go's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as an integer or as a string with a K, M or G
// suffix (powers of 1024; a trailing B is optional): 52428800, "50M", "50MB".
type Size int64

// ParseSize parses the size syntax of the configuration file.
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, "B")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = strings.TrimSpace(s[:len(s)-1])
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with K, M or G)", orig)
	}
	return n * mult, nil
}

// UnmarshalText accepts the string form; a TOML integer decodes into the
// int64 directly.
func (z *Size) UnmarshalText(b []byte) error {
	n, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = Size(n)
	return nil
}

// MarshalText writes the size as a plain number of bytes.
func (z Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(z), 10)), nil }
