/* A worker in 30 lines: every call paid for through the shared pool. */
#include <stdio.h>
#include <stdlib.h>
#include <tokenmgr.h>

int main(void)
{
    const char *cfg = getenv("TOKENMGR_CONFIG");
    const char *params[] = {"domain", "1", "asin", "B000000001,B000000002",
                            NULL};
    tkm_options o;
    tkm_client *c = NULL;
    tkm_keepa *kc = NULL;
    char err[512] = "";

    tkm_options_init(&o);
    if ((cfg && tkm_config_load_file(cfg, &o, err, sizeof err) != TKM_OK) ||
        tkm_options_from_env(&o, err, sizeof err) != TKM_OK) {
        fprintf(stderr, "%s\n", err);
        return 78;
    }
    if (tkm_client_open(&o, &c) != TKM_OK || tkm_keepa_open(c, &kc) != TKM_OK) {
        fprintf(stderr, "%s\n", kc ? tkm_keepa_errstr(kc) : tkm_errstr(c));
        return 78;
    }
    for (int batch = 1; batch <= 3; batch++) {
        tkm_keepa_response r;
        tkm_heartbeat(c, "fetching products"); /* cheap: coalesced */
        /* Waits for tokens, calls, reconciles; retries 429s and 5xx. */
        if (tkm_keepa_request(kc, "/product", params, 2, &r) == TKM_OK)
            printf("batch %d: %zu bytes, %lld tokens left\n", batch, r.body_len,
                   (long long)r.tokens_left);
        else
            fprintf(stderr, "%s\n", tkm_keepa_errstr(kc));
        tkm_keepa_response_free(&r);
    }
    tkm_keepa_free(kc);
    tkm_client_free(c);
    return 0;
}
