declare module '@stellar/js-xdr';
