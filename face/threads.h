#ifndef BWSAGENT_FACE_THREADS_H
#define BWSAGENT_FACE_THREADS_H
#ifdef __cplusplus
extern "C" {
#endif
void bwsagent_set_num_threads(int n);
int bwsagent_get_num_threads(void);
#ifdef __cplusplus
}
#endif
#endif
