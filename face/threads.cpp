#include <opencv2/core.hpp>
#include "threads.h"

// gocv v0.31 has no binding for cv::setNumThreads; OpenCV exceptions must not
// cross into Go (they would abort the process), hence the catch-all.
void bwsagent_set_num_threads(int n) {
    try { cv::setNumThreads(n); } catch (...) {}
}

int bwsagent_get_num_threads(void) {
    try { return cv::getNumThreads(); } catch (...) { return -1; }
}
