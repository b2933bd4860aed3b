package bench

import "testing"

func TestStatCPUTicks(t *testing.T) {
	// A command name with spaces and a ')' in it, as a process may choose.
	stat := "4242 (we ft) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 120 35 0 0 20 0 9 0 100 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
	got, err := StatCPUTicks(stat)
	if err != nil || got != 155 {
		t.Fatalf("StatCPUTicks = %d, %v; want 155", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := StatCPUTicks(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestStatusBytes(t *testing.T) {
	status := "Name:\tweft\nVmPeak:\t 2000000 kB\nVmHWM:\t  131072 kB\nVmRSS:\t   65536 kB\n"
	if got, err := StatusBytes(status, "VmHWM"); err != nil || got != 128<<20 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if got, err := StatusBytes(status, "VmRSS"); err != nil || got != 64<<20 {
		t.Errorf("VmRSS = %d, %v", got, err)
	}
	if _, err := StatusBytes(status, "VmSwap"); err == nil {
		t.Error("missing field: want an error")
	}
	if _, err := StatusBytes("VmHWM: 12 MB\n", "VmHWM"); err == nil {
		t.Error("unit MB: want an error")
	}
}
