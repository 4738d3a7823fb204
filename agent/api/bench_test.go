package api

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchSamples returns four samples for an enrollment and the token query
// to use: a live head turn with liveness on when the shared data is there,
// else four copies of a registry photo with liveness off.
func benchSamples(b *testing.B) ([]string, string) {
	if _, ok := sharedDataPath("videos", "headmotion", liveClip); ok {
		return liveSeq(b), "task=enroll"
	}
	u := fileDataURL(b, gocvImage(b, "face.jpg"))
	return []string{u, u, u, u}, "task=enroll&livedetection=false"
}

// uploadParallel uploads the samples at once, as BWS's UI does.
func uploadParallel(b *testing.B, f *fixture, tok string, urls []string) {
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.do(req{method: http.MethodPost, path: fmt.Sprintf("upload?index=%d", i+1), bearer: tok, body: u})
			if r.Code != 200 {
				b.Errorf("upload: %v", r)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkFullFlow is one client's whole enrollment over HTTP: /token
// (Basic), four parallel uploads (each analysed on arrival), /enroll.
func BenchmarkFullFlow(b *testing.B) {
	f := newFixture(b)
	urls, query := benchSamples(b)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		tok := f.token("app1", fmt.Sprintf("bcid=bws.12.%d&%s", i, query))
		uploadParallel(b, f, tok, urls)
		if res := f.perform(tok, "enroll"); !res.Success {
			b.Fatalf("enroll: %+v", res)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkEnrollDecision times /enroll alone after the last upload: the
// liveness decision, fusion, the store writes and the answer.
func BenchmarkEnrollDecision(b *testing.B) {
	f := newFixture(b)
	urls, query := benchSamples(b)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tok := f.token("app1", fmt.Sprintf("bcid=bws.12.%d&%s", i, query))
		uploadParallel(b, f, tok, urls)
		b.StartTimer()
		start := time.Now()
		if res := f.perform(tok, "enroll"); !res.Success {
			b.Fatalf("enroll: %+v", res)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.95), "p95-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}
