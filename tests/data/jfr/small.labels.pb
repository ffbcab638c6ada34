





thread_nameworker-1worker-2GET /fib