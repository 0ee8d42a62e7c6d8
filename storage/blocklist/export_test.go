package blocklist

import "time"

// SetNow sets the clock a List dates and ages tenant indexes by.
func SetNow(l *List, now func() time.Time) { l.now = now }
