package dataset

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
)

// A video becomes jobs by picking frames where the head has turned enough
// since the previous pick, tagged with the direction the pose estimator
// measured (as BWS's UI picks frames by motion). Frames are analysed every
// videoStride frames; the pose is smoothed over three analysed frames so
// one jittery estimate does not make a pick, and a turn must also move the
// nose tip against the eye corners (rigidTurn): expressions alone make the
// PnP pose jump by 5–8° without any head rotation.
const (
	videoStride       = 2
	minVideoFace      = 70  // px; smaller faces are not webcam-like
	videoChallengeDeg = 8.0 // least turn for a tagged step
	videoAnyDeg       = 7.0 // least turn for an untagged step
	videoAxisTol      = 30.0
	videoMaxGapSec    = 2.5
)

// videoTrack is the analysed pose per frame.
type videoTrack struct {
	fps    float64
	frames []int        // frame numbers analysed with a face
	poses  []geom.Pose  // smoothed
	noses  []geom.Point // smoothed nose-tip offsets (see noseOffset)
}

// noseOffset is the nose tip's position relative to the eye centres'
// midpoint, in the eye line's frame (x along the eyes to image-right, y
// perpendicular downward), in interocular distances. The eye corners and
// the nose tip are rigid: a smile or a pout, which makes the PnP pose
// jitter by several degrees, barely moves them, while a real turn of θ
// moves the nose tip (24 mm ahead of the eyes, 63 mm apart) by about
// 0.38·sin θ.
func noseOffset(lm *face.Landmarks) geom.Point {
	// Eye corners, not lid points: a wink or a squint moves the lids.
	l := geom.Point{X: (lm[36].X + lm[39].X) / 2, Y: (lm[36].Y + lm[39].Y) / 2}
	r := geom.Point{X: (lm[42].X + lm[45].X) / 2, Y: (lm[42].Y + lm[45].Y) / 2}
	n := lm[30]
	iod := math.Hypot(r.X-l.X, r.Y-l.Y)
	if !(iod > 1e-6) {
		return geom.Point{X: math.NaN(), Y: math.NaN()}
	}
	ux, uy := (r.X-l.X)/iod, (r.Y-l.Y)/iod
	vx, vy := n.X-(l.X+r.X)/2, n.Y-(l.Y+r.Y)/2
	return geom.Point{X: (vx*ux + vy*uy) / iod, Y: (-vx*uy + vy*ux) / iod}
}

// rigidTurn reports whether the nose tip moved against the eyes as a real
// head turn by the pose change would move it: at least half as far, within
// 45° of the direction.
func rigidTurn(from, to geom.Point, dp geom.Pose) bool {
	want := geom.Point{X: 0.38 * math.Sin(dp.Yaw*math.Pi/180), Y: -0.38 * math.Sin(dp.Pitch*math.Pi/180)}
	got := geom.Point{X: to.X - from.X, Y: to.Y - from.Y}
	wm, gm := math.Hypot(want.X, want.Y), math.Hypot(got.X, got.Y)
	if !(gm >= 0.7*wm) || wm == 0 {
		return false
	}
	return (want.X*got.X+want.Y*got.Y)/(wm*gm) >= math.Cos(35*math.Pi/180)
}

// trackVideo analyses every videoStride-th frame of a video.
func trackVideo(ctx context.Context, e *face.Engine, path string) (videoTrack, error) {
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return videoTrack{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer vc.Close()
	t := videoTrack{fps: vc.Get(gocv.VideoCaptureFPS)}
	if !(t.fps > 0) || t.fps > 240 {
		t.fps = 25
	}
	frame := gocv.NewMat()
	defer frame.Close()
	var raw []geom.Pose
	var rawNose []geom.Point
	for i := 0; vc.Read(&frame); i++ {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		if i%videoStride != 0 || frame.Empty() {
			continue
		}
		fs, err := e.Analyze(ctx, frame, face.Options{})
		if err != nil {
			return t, fmt.Errorf("%s frame %d: %w", path, i, err)
		}
		f, ok := fs.PrimaryFace()
		if !ok || f.Box.W < minVideoFace || len(fs.Faces) != 1 {
			continue
		}
		t.frames = append(t.frames, i)
		raw = append(raw, f.Pose)
		rawNose = append(rawNose, noseOffset(&f.Landmarks))
	}
	t.poses = make([]geom.Pose, len(raw))
	t.noses = make([]geom.Point, len(raw))
	for i := range raw {
		lo, hi := max(0, i-1), min(len(raw)-1, i+1)
		var ys, ps, nx, ny []float64
		for j := lo; j <= hi; j++ {
			ys = append(ys, raw[j].Yaw)
			ps = append(ps, raw[j].Pitch)
			nx = append(nx, rawNose[j].X)
			ny = append(ny, rawNose[j].Y)
		}
		t.poses[i] = geom.Pose{Yaw: med(ys), Pitch: med(ps), Roll: raw[i].Roll}
		t.noses[i] = geom.Point{X: med(nx), Y: med(ny)}
	}
	return t, nil
}

func med(xs []float64) float64 {
	switch len(xs) {
	case 1:
		return xs[0]
	case 2:
		return (xs[0] + xs[1]) / 2
	}
	a, b, c := xs[0], xs[1], xs[2]
	return math.Max(math.Min(a, b), math.Min(math.Max(a, b), c))
}

// videoJob is one job cut from a video: frame numbers and tags.
type videoJob struct {
	frames []int
	tags   []string
}

// pickJobs cuts up to maxJobs jobs from a track. challenge selects
// direction-tagged steps (each within videoAxisTol of an axis); otherwise
// tags are "any". Jobs do not share frames.
func pickJobs(t videoTrack, rng *rand.Rand, challenge bool, maxJobs int, start int) ([]videoJob, int) {
	var jobs []videoJob
	maxGap := int(videoMaxGapSec * t.fps)
	i := start
	for i < len(t.frames) && len(jobs) < maxJobs {
		want := 3 + rng.IntN(2) // samples per job
		job := videoJob{frames: []int{t.frames[i]}, tags: []string{"any"}}
		cur := i
		for len(job.frames) < want {
			next, tag := -1, ""
			for j := cur + 1; j < len(t.frames) && t.frames[j]-t.frames[cur] <= maxGap; j++ {
				ang, mag := geom.MotionDirection(t.poses[cur], t.poses[j])
				dp := geom.Pose{Yaw: t.poses[j].Yaw - t.poses[cur].Yaw, Pitch: t.poses[j].Pitch - t.poses[cur].Pitch}
				if !rigidTurn(t.noses[cur], t.noses[j], dp) {
					continue
				}
				if challenge {
					q := geom.Quadrant(ang)
					if mag >= videoChallengeDeg && axisError(ang) <= videoAxisTol {
						next, tag = j, q
						break
					}
				} else if mag >= videoAnyDeg {
					next, tag = j, "any"
					break
				}
			}
			if next < 0 {
				break
			}
			job.frames = append(job.frames, t.frames[next])
			job.tags = append(job.tags, tag)
			cur = next
		}
		if len(job.frames) >= 3 {
			jobs = append(jobs, job)
			i = cur + 1
		} else {
			i++
		}
	}
	return jobs, i
}

// axisError is the angle between a direction and the nearest axis.
func axisError(a float64) float64 {
	r := math.Mod(a, 90)
	if r < 0 {
		r += 90
	}
	return math.Min(r, 90-r)
}

// readFrames returns the given frame numbers (ascending) of a video.
func readFrames(path string, want []int) ([]*image.RGBA, error) {
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer vc.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	idx := map[int]int{}
	for k, f := range want {
		idx[f] = k
	}
	out := make([]*image.RGBA, len(want))
	got := 0
	for i := 0; got < len(want) && vc.Read(&frame); i++ {
		k, ok := idx[i]
		if !ok {
			continue
		}
		img, err := frame.ToImage()
		if err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", path, i, err)
		}
		out[k] = toRGBA(img)
		got++
	}
	if got < len(want) {
		return nil, fmt.Errorf("%s: %d of %d frames read", path, got, len(want))
	}
	return out, nil
}
