package dataset

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"path/filepath"
	"strings"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/math/f64"

	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/geom"
	"github.com/bwsagent/bwsagent/face/imgio"
)

// Portrait is one frontal face cut from a photo into a webcam-like
// 640×480 frame, with its landmarks and pose in that frame.
type Portrait struct {
	Name      string
	Img       *image.RGBA
	Landmarks [68]geom.Point
	Pose      geom.Pose
	// PAD is the passive PAD score of the portrait frame itself: a photo
	// the PAD model already takes for a recapture (a press photo, an
	// upscaled thumbnail) cannot stand for a live capture.
	PAD float64
}

// Portrait selection: frontal enough to be the zero pose of a rendered
// head, large enough for its landmarks, alone in its frame.
const (
	maxPortraitYaw   = 12
	maxPortraitPitch = 14
	maxPortraitRoll  = 10
	minSourceFace    = 60   // px in the source photo
	portraitWidth    = 3.6  // frame width in face boxes (a face box of ~180 px)
	minPortraitWidth = 2.2  // tighter cuts for faces with neighbours (group photos)
	otherFaceRatio   = 0.15 // a face this fraction of the main one spoils the frame
)

// LoadPortraits cuts every usable face out of the photos. Photos with none
// are reported on progress and skipped; only read errors fail.
func LoadPortraits(ctx context.Context, e *face.Engine, paths []string, progress io.Writer) ([]Portrait, error) {
	var out []Portrait
	for _, path := range paths {
		ps, err := portraitsOf(ctx, e, path, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// FirstPortraits takes, from each group of photos (e.g. one person's), the
// portraits of the first photo that has any.
func FirstPortraits(ctx context.Context, e *face.Engine, groups [][]string, progress io.Writer) ([]Portrait, error) {
	var out []Portrait
	for _, g := range groups {
		for _, path := range g {
			ps, err := portraitsOf(ctx, e, path, io.Discard)
			if err != nil {
				return nil, err
			}
			if len(ps) > 0 {
				out = append(out, ps...)
				break
			}
		}
	}
	return out, nil
}

// portraitsOf cuts the usable faces out of one photo.
func portraitsOf(ctx context.Context, e *face.Engine, path string, progress io.Writer) ([]Portrait, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	img, err := imgio.ReadFile(path, imgio.Limits{})
	if err != nil {
		return nil, err
	}
	faces, err := detect(ctx, e, img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	base := sanitize(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	var out []Portrait
	content := contentMask(img) // once per photo, for all its faces
	for i, f := range faces {
		if f.Box.W < minSourceFace {
			continue
		}
		p, ok, err := cutPortrait(ctx, e, img, content, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !ok {
			continue
		}
		p.Name = base
		if len(faces) > 1 {
			p.Name = fmt.Sprintf("%s-f%d", base, i+1)
		}
		out = append(out, p)
	}
	if len(out) == 0 && progress != nil {
		fmt.Fprintf(progress, "skip %s: no frontal face alone in its frame\n", path)
	}
	return out, nil
}

func detect(ctx context.Context, e *face.Engine, img image.Image) ([]face.Face, error) {
	m, err := face.MatFromImage(img)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return e.Detect(ctx, m)
}

// cutPortrait frames face f of img at 640×480 and checks the result; a
// face with neighbours is cut tighter until it is alone. content marks
// img's own pixels (contentMask).
func cutPortrait(ctx context.Context, e *face.Engine, img image.Image, content *image.Alpha, f face.Face) (Portrait, bool, error) {
	if math.Abs(f.Pose.Yaw) > maxPortraitYaw+4 || math.Abs(f.Pose.Pitch) > maxPortraitPitch+4 {
		return Portrait{}, false, nil
	}
	for width := portraitWidth; width >= minPortraitWidth-1e-9; width -= 0.7 {
		p, ok, err := cutPortraitAt(ctx, e, img, content, f, width)
		if err != nil || ok {
			return p, ok, err
		}
	}
	return Portrait{}, false, nil
}

// cutPortraitAt cuts a frame width face boxes wide around f. A photo at
// least as large as the frame is not cut wider than itself (a webcam-like
// photo keeps its own framing, unless that leaves less than
// minPortraitWidth); a small one (LFW's 250 px) is not upscaled further
// and its content is extended around it.
func cutPortraitAt(ctx context.Context, e *face.Engine, img image.Image, content *image.Alpha, f face.Face, width float64) (Portrait, bool, error) {
	cx, cy := f.Box.Center()
	b := img.Bounds()
	wpx := width * f.Box.W
	if b.Dx() >= FrameW && b.Dy() >= FrameH {
		wpx = math.Min(wpx, math.Min(float64(b.Dx()), float64(b.Dy())*FrameW/FrameH))
		wpx = math.Max(wpx, minPortraitWidth*f.Box.W)
	}
	s := FrameW / wpx
	// Face centre a little above the frame centre, as webcams frame people.
	m := f64.Aff3{s, 0, FrameW/2 - s*cx, 0, s, FrameH*0.47 - s*cy}
	// Where the cut reaches past the photo (or into its alignment
	// padding), the photo's own colours continue smoothly: no second face,
	// no edge (see extendPhoto).
	toFrame := f64.Aff3{m[0], 0, m[2] - float64(b.Min.X)*s, 0, m[4], m[5] - float64(b.Min.Y)*s}
	sharp := newFrame()
	xdraw.BiLinear.Transform(sharp, toFrame, img, b, xdraw.Src, nil)
	valid := image.NewAlpha(sharp.Bounds())
	xdraw.NearestNeighbor.Transform(valid, toFrame, content, b, xdraw.Src, nil)
	bg := extendPhoto(sharp, valid)
	m2, err := face.MatFromImage(bg)
	if err != nil {
		return Portrait{}, false, err
	}
	defer m2.Close()
	fs, err := e.Analyze(ctx, m2, face.Options{PAD: true})
	if err != nil {
		return Portrait{}, false, err
	}
	faces := fs.Faces
	if len(faces) == 0 {
		return Portrait{}, false, nil
	}
	main := nearest(faces)
	for i, o := range faces {
		if i != main && o.Box.W >= otherFaceRatio*faces[main].Box.W {
			return Portrait{}, false, nil
		}
	}
	g := faces[main]
	if math.Abs(g.Pose.Yaw) > maxPortraitYaw || math.Abs(g.Pose.Pitch) > maxPortraitPitch || math.Abs(g.Pose.Roll) > maxPortraitRoll {
		return Portrait{}, false, nil
	}
	if main != fs.Primary {
		return Portrait{}, false, nil
	}
	return Portrait{Img: bg, Landmarks: [68]geom.Point(g.Landmarks), Pose: g.Pose, PAD: fs.PAD}, true, nil
}

// nearest is the index of the face nearest the frame centre.
func nearest(fs []face.Face) int {
	best, bd := 0, math.Inf(1)
	for i, f := range fs {
		x, y := f.Box.Center()
		if d := math.Hypot(x-FrameW/2, y-FrameH/2); d < bd {
			best, bd = i, d
		}
	}
	return best
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}
