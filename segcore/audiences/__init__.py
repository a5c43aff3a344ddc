"""Audiences a CRM can load: the customers of a scoring that a definition accepts, split into a
treatment group and a control group held back, with what changed since the previous export."""
