// The machine's own stalls of busy threads: two threads (this machine's two CPUs) read the clock in a loop for
// 2 s and sum the gaps over 20 us (the scheduler or the hypervisor took its CPU). PERF.md uses
// it beside open-loop figures. Build and run: cc -O2 -pthread tools/jitter.c -o /tmp/jitter &&
// /tmp/jitter (each pinned to a CPU) or /tmp/jitter 0 (unpinned).
#define _GNU_SOURCE
#include <stdio.h>
#include <pthread.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>
static double secs=2.0; static int pin=1;
static uint64_t now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000ull+t.tv_nsec;}
void* run(void*a){long id=(long)a; if(pin){cpu_set_t s;CPU_ZERO(&s);CPU_SET(id,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);}
 uint64_t st=now(),last=st,n20=0,n1m=0,stall=0,mx=0; while(1){uint64_t t=now(); uint64_t g=t-last; if(g>20000){n20++;stall+=g; if(g>1000000)n1m++; if(g>mx)mx=g;} last=t; if(t-st>secs*1e9)break;}
 printf("thread %ld: gaps>20us %lu, >1ms %lu, stalled %.2f ms of %.0f, max %.2f ms\n",id,n20,n1m,stall/1e6,secs*1e3,mx/1e6);return 0;}
int main(int c,char**v){ if(c>1)pin=atoi(v[1]); pthread_t t[2]; for(long i=0;i<2;i++)pthread_create(&t[i],0,run,(void*)i); for(int i=0;i<2;i++)pthread_join(t[i],0);}
