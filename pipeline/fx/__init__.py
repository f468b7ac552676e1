"""Exchange rates: providers behind one interface (`providers`), the ECB and Open Exchange
Rates clients, and the rate sets they return (`rates`)."""
