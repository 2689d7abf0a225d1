"""Payments service: the double-entry ledger (integer pence, PostgreSQL), schedules, Collect & Pay
collection and disbursement, Direct Pay reports, reconciliation.

Chart of accounts (amount > 0 debit, < 0 credit; per-case accounts carry the case_id):
  pp_maintenance, pp_fee, pp_enforcement   what the paying parent owes (debit balance)
  pp_credit                                paid in advance / overpaid, held for the paying parent
  rp_entitled                              maintenance owed to the receiving parent, not yet collected
  rp_payable                               collected, less the 4% fee, not yet passed on
  agency_fees, agency_enforcement          the agency's income (pooled)
  suspense                                 money that could not be attributed to a case (pooled)
  client_funds                             the client bank account (pooled); equals bank movements
  bank_clearing                            payments to receiving parents instructed, not yet settled

Entries: a period charge debits pp_maintenance / pp_fee against rp_entitled / agency_fees; money
received debits client_funds and credits what it settles (allocation order, domain.payments.
allocation), moving collected maintenance from rp_entitled to rp_payable less the receiving
parent's fee; a disbursement moves rp_payable to bank_clearing and then clearing to client_funds
when the bank accepts it. Corrections are reversing entries; liability changes post adjustments.
"""
