#define WARDEN_IMPLEMENTATION
#include "warden.h"
#include <stdio.h>
#include <string.h>
int main(int argc,char**argv){ char err[256]; warden_client*c; if(warden_connect(argv[1],&c,err,sizeof err)){puts(err);return 2;}
 printf("base=%p bytes=%zu slot0=%p (past end by %ld)\n",(void*)c->base,c->bytes,(void*)(c->base+warden_slot_off(c,0)),(long)(warden_slot_off(c,0)+128-c->bytes));
 char cmd[64]; snprintf(cmd,64,"grep -B1 -A1 %lx /proc/%d/maps",(unsigned long)c->base,getpid()); system(cmd);
 uint8_t *nx = c->base + c->bytes; printf("bytes after mapping before: %02x%02x%02x%02x\n", nx[0],nx[1],nx[2],nx[3]);
 warden_request r=warden_request_check("acme","planner-1","fs.read","/data/acme/x"); warden_verdict v; warden_set_timeout_ms(c,200); warden_validate(c,&r,&v);
 printf("bytes after mapping after: %02x%02x%02x%02x (the slot's state word, written into a mapping that is not the client's)\n", nx[0],nx[1],nx[2],nx[3]); return 0;}
