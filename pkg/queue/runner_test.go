package queue

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	min, max := 15*time.Minute, 4*time.Hour
	want := []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		if got := Backoff(i+1, min, max); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
	if got := Backoff(1000, min, max); got != max {
		t.Errorf("many attempts: %v", got)
	}
}
