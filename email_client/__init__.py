"""email_client: keeps the gateway settings and the send queue in Redis.

It queues the chunks of jobs that web hands it, sends each job to the gateway
and reports every outcome back to web. Run it with `python -m email_client`;
`Service` runs the same parts inside another program, such as a test.
"""
