"""The caseworker console: the web pages caseworkers use all day (work queues, the case page,
actions as forms), server-rendered in the GOV.UK Design System's markup, working without
JavaScript. It holds no data of its own: every read and action is a gRPC call to CaseService,
payments, notifications or risk, made with the signed-in caseworker's own token, so the services'
access table (services/common/access.py) and audit apply to the person, not to the console.
"""
