/*
 * main.c - command line of mtls-spoa.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "probe.h"
#include "server.h"

#ifndef MTLS_VERSION
#define MTLS_VERSION "dev"
#endif

#define PROBE_TIMEOUT_MS 3000

static void usage(FILE *f)
{
	fprintf(f,
	"Usage: mtls-spoa [-c FILE] [-l ADDR]... [-t THREADS] [-v | --log-level LEVEL]\n"
	"                 [--log-format text|json]\n"
	"       mtls-spoa -c FILE --check\n"
	"       mtls-spoa --probe ADDR\n"
	"\n"
	"HAProxy SPOE agent: per-host \"bring your own CA\" client certificate checks.\n"
	"\n"
	"  -c, --config FILE     configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	"  -l, --listen ADDR     listen on ADDR, repeatable, replaces `listen` of the\n"
	"                        config: 127.0.0.1:12345, [::1]:12345, *:12345,\n"
	"                        unix:/absolute/path\n"
	"      --state-dir DIR   directory of the API's state (replaces `state-dir`)\n"
	"      --admin-listen ADDR  admin HTTP listener (/metrics, /healthz, /readyz,\n"
	"                        /v1/status), repeatable, replaces `admin-listen` of\n"
	"                        the config; `none`: no admin listener\n"
	"  -t, --threads N       worker threads (default: `threads`, else number of CPUs)\n"
	"  -v, --verbose         log at debug level\n"
	"      --log-level L     error, warning, info or debug\n"
	"      --log-format F    text or json (one object per line)\n"
	"      --check           load and check the configuration, then exit\n"
	"      --probe ADDR      SPOP health check of an agent at ADDR: exit 0 if healthy\n"
	"  -V, --version         print the version\n"
	"  -h, --help            this help\n"
	"\n"
	"Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT stop gracefully.\n");
}

/* Append a checked -l / --admin-listen address to list[*n]. Returns 0,
 * or -1 after saying what is wrong. */
static int add_addr(const char **list, size_t *n, const char *opt,
                    const char *addr)
{
	char err[CONFIG_ERR_LEN];

	if (*n == CONFIG_MAX_LISTEN) {
		fprintf(stderr, "mtls-spoa: at most %d %s addresses\n",
		        CONFIG_MAX_LISTEN, opt);
		return -1;
	}
	if (addr_check(addr, err, sizeof(err)) != 0) {
		fprintf(stderr, "mtls-spoa: %s %s: %s\n", opt, addr, err);
		return -1;
	}
	list[(*n)++] = addr;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "admin-listen", required_argument, NULL, 'A' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "check", no_argument, NULL, 'C' },
		{ "probe", required_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *probe = NULL, *state_dir = NULL;
	struct config_opts copts = { 0 };
	const char *listen[CONFIG_MAX_LISTEN];
	const char *admin[CONFIG_MAX_LISTEN];
	size_t n_listen = 0, n_admin = 0, i;
	int admin_fixed = 0;
	int threads = -1, log_level = -1, log_format = -1, check = 0, opt;
	struct config *cfg = NULL;
	struct server_opts so;
	char err[CONFIG_ERR_LEN];

	while ((opt = getopt_long(argc, argv, "c:l:t:vVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'l':
			if (add_addr(listen, &n_listen, "-l", optarg) != 0)
				return 2;
			break;
		case 'A':
			admin_fixed = 1;
			if (strcmp(optarg, "none") != 0 &&
			    add_addr(admin, &n_admin, "--admin-listen", optarg) != 0)
				return 2;
			break;
		case 'S':
			if (optarg[0] == '\0') {
				fprintf(stderr, "mtls-spoa: --state-dir takes a directory\n");
				return 2;
			}
			state_dir = optarg;
			break;
		case 't': {
			char *end;
			long n;

			errno = 0;
			n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno || n < 0 || n > 64) {
				fprintf(stderr, "mtls-spoa: -t takes 0..64 (0: number of CPUs)\n");
				return 2;
			}
			threads = (int)n;
			break;
		}
		case 'v':
			log_level = LOG_LVL_DEBUG;
			break;
		case 'L':
			if (config_parse_log_level(optarg, &log_level) != 0) {
				fprintf(stderr, "mtls-spoa: --log-level takes error, warning, info or debug\n");
				return 2;
			}
			break;
		case 'F':
			if (settings_parse_log_format(optarg, &log_format) != 0) {
				fprintf(stderr, "mtls-spoa: --log-format takes text or json\n");
				return 2;
			}
			break;
		case 'C':
			check = 1;
			break;
		case 'P':
			probe = optarg;
			break;
		case 'V':
			printf("mtls-spoa %s\n", MTLS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mtls-spoa: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	if (probe) {
		if (probe_run(probe, PROBE_TIMEOUT_MS, err, sizeof(err)) != 0) {
			fprintf(stderr, "mtls-spoa: probe failed: %s\n", err);
			return 1;
		}
		printf("OK: %s answered a health check\n", probe);
		return 0;
	}

	/* Without -c, the default file is optional: the agent can run with no
	 * policies (every verdict is no_policy). With -c it must load. */
	if (!config_path && (check || access(CONFIG_DEFAULT_PATH, F_OK) == 0))
		config_path = CONFIG_DEFAULT_PATH;
	copts.state_dir = state_dir;
	if (config_path && config_reload_opts(config_path, NULL, &copts, &cfg, err,
	                                      sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		/* Warnings do not fail the check: the configuration works. */
		for (i = 0; i < cfg->n_warnings; i++)
			fprintf(stderr, "%s\n", cfg->warnings[i]);
		printf("OK: %zu CAs, %zu hosts", cfg->n_cas, cfg->n_hosts);
		if (cfg->api_source != SIZE_MAX) {
			size_t nc = 0, nh = 0;

			for (i = 0; i < cfg->n_cas; i++)
				nc += cfg->ca_origin[i].source == cfg->api_source;
			for (i = 0; i < cfg->n_hosts; i++)
				nh += cfg->host_origin[i].source == cfg->api_source;
			printf(" (%zu CAs, %zu hosts from %s)", nc, nh, cfg->api_path);
		}
		printf("\n");
		config_free(cfg);
		return 0;
	}

	memset(&so, 0, sizeof(so));
	so.config_path = config_path;
	so.state_dir = state_dir;
	if (cfg)
		so.agent = cfg->agent;
	else
		config_agent_defaults(&so.agent);
	if (n_listen > 0) {
		for (i = 0; i < n_listen; i++)
			so.agent.listen[i] = (char *)listen[i];
		so.agent.n_listen = n_listen;
	}
	so.listen_fixed = n_listen > 0;
	if (admin_fixed) {
		memset(so.agent.admin_listen, 0, sizeof(so.agent.admin_listen));
		for (i = 0; i < n_admin; i++)
			so.agent.admin_listen[i] = (char *)admin[i];
		so.agent.n_admin_listen = n_admin;
		so.admin_listen_fixed = 1;
	}
	if (threads >= 0) {
		so.agent.threads = threads;
		so.threads_fixed = 1;
	}
	if (log_level >= 0) {
		so.agent.log_level = log_level;
		so.log_level_fixed = 1;
	}
	if (log_format >= 0) {
		so.agent.log_format = log_format;
		so.log_format_fixed = 1;
	}
	log_set_level(so.agent.log_level);
	log_set_format(so.agent.log_format);
	return server_run(&so, cfg);
}
