package geom

import "testing"

func TestConvexHull(t *testing.T) {
	tests := []struct {
		name string
		pts  []Point
		want int // corners
	}{
		{"square with inner and edge points", []Point{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {5, 5}, {3, 7}, {5, 0}}, 4},
		{"triangle", []Point{{0, 0}, {8, 1}, {2, 9}}, 3},
		{"duplicates", []Point{{0, 0}, {0, 0}, {4, 0}, {4, 0}, {0, 4}}, 3},
		{"collinear", []Point{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, 0},
		{"too few", []Point{{0, 0}, {1, 0}}, 0},
		{"none", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hull := ConvexHull(tt.pts)
			if len(hull) != tt.want {
				t.Fatalf("hull %v: %d corners, want %d", hull, len(hull), tt.want)
			}
			if tt.want == 0 {
				return
			}
			for _, p := range tt.pts {
				if !InsideConvex(hull, p) {
					t.Errorf("%v outside its hull %v", p, hull)
				}
			}
			if InsideConvex(hull, Point{X: -1, Y: -1}) {
				t.Errorf("(-1, -1) inside %v", hull)
			}
		})
	}
}
